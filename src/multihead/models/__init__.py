"""Networks (shared trunk + heads) and the losses that train them."""
