"""Reading the proxy's traces: `ccstack trace list | analyze | compare` and `ccstack replay`.

reading    trace files (ccproxy --trace-dir, or recorded Claude Code requests) -> Trace
analysis   pure: the parts of a request, token breakdowns, per-turn cache and timing, tool-call checks
counting   token counters: llama-server's /tokenize (+ /apply-template), or tiktoken o200k_base
render     rich tables for the terminal, Markdown, JSON
replay     captured requests sent again through ccproxy to other backends; plot: the PNG
cli        the subcommands, registered by ccstack.cli
"""
