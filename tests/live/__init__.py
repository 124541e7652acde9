"""What needs a real WebUI (a checkout, a running server) or a real browser: the contract tests, the real-host
A/Bs, the browser tests and fault injection. forge_neo/ and sdnext/ hold their servers and page steps."""
