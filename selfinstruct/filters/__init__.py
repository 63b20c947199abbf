"""Pure: small named checks that reject a candidate instruction, an instance or a
reasoning trace, each with a reason a person reads in ``rejected.jsonl``."""
