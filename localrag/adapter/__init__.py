"""LoRA adapters: import (PEFT or GGUF LoRA), merge into the base, quantize, version, roll back.

`peft` reads PEFT folders, `convert` fits an adapter to a GGUF base (names, rotary permutation,
shapes), `merge` merges and quantizes, `registry` keeps versions and the active one, `verify`
compares a merge with llama.cpp's runtime LoRA, `manage` ties them to the vault, `memfile` keeps
private model bytes off the disk.
"""

QUANTS = {
    "Q4_K_M": "smallest and fastest; the default",
    "Q5_K_M": "a little larger, closer to the merge",
    "Q8_0": "about twice Q4's size, close to the merge",
    "F16": "the merge itself, unquantized; the largest",
}
"""The quantizations a merge can write, with a word for the user. Here, not in `merge`, so that
the CLI and the app can list them without loading gguf and numpy."""
