"""Pure: ROUGE-L tokenizers, the exact similarity index and its compiled kernel."""
