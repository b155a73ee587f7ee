"""The registry: manifests, version records, artifacts, the hold marker, freshness, as the suite writes them."""
