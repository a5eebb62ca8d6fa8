"""Primary keys moved from AutoField to BigAutoField after the tables referring to them."""
