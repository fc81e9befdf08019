"""Search: the sentence encoder, lexical and vector indexes, and hybrid ranking of papers."""
