"""The widgets the screens are built of; each holds the state it shows."""
