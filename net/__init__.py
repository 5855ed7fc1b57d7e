"""HTTP out of folderd, every request bounded: shared by lookups and webhooks.

`net.transport` is an httpx transport whose requests each get a total deadline (connect,
send, every byte of the answer); `net.fetch` makes one attempt within it: the body read
up to a size cap, redirects followed only within the request's origin (or to hosts named
for it). `processors.lookup` (the `http_lookup` node) and `daemon.webhooks` (`notify`)
both use them. This package imports nothing else of folderd's; anything may import it.
"""
