"""What several nodes share: derivatives in an object store, image infos and purges in Redis."""
