"""The Textual console: a view of session directories and a starter of sessions. It never
imports torch or transformers; it may import every package of core but worker/."""
