"""The aiohttp gateway: merchant API, channel callbacks, token look-up, health."""
