"""Serializable loss classes (no closures): metric learning, focal loss, ..."""
