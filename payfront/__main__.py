from payfront.cli import main

main()
