"""Dataset versions: hashing, build, checklist, approval, diff, export, card."""
