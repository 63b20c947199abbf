"""Text similarity: tokenizers, exact ROUGE-L and its index, MinHash.

The names of the choices live here, in the package's light entry, so that the command
line can offer them without loading the kernels.
"""

from typing import Literal

#: The ROUGE tokenizers by name (``--tokenizer``).
TokenizerName = Literal["multilingual", "rouge"]

#: ``dedup --method``: exact ROUGE-L, for instructions, or MinHash/LSH, for long documents.
DedupMethod = Literal["rouge", "minhash"]
