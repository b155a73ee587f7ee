"""The serving path: health, the recommendation probe, served versus published, config and rules documents."""
