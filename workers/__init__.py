"""arq settings and job functions: thin glue from core to channels."""
