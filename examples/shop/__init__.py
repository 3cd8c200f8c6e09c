"""A small merchant shop (aiohttp) that takes payments through payfront with the merchant SDK."""
