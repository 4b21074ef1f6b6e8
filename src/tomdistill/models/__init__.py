"""Model backends behind one interface (`base.Model`), looked up by spec in `registry`.

Nothing is imported here: a backend's heavy libraries (torch, transformers, llama.cpp, vLLM) load
only when `registry.load_model` builds it. (This file makes `tomdistill.models` a regular package
rather than a namespace one, so the import-graph check in tests/test_architecture.py reads it.)
"""
