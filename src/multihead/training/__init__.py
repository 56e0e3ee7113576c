"""Config validation, the LightningModule, and running one job or a sweep."""
