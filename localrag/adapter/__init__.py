"""LoRA adapters: import (PEFT or GGUF LoRA), merge into the base, quantize, version, roll back.

`peft` reads PEFT folders, `convert` fits an adapter to a GGUF base (names, rotary permutation,
shapes), `merge` merges and quantizes, `registry` keeps versions and the active one, `verify`
compares a merge with llama.cpp's runtime LoRA, `manage` ties them to the vault, `memfile` keeps
private model bytes off the disk.
"""
