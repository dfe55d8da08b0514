"""The Docker Compose deployment driven from a checkout of this repository (`athena deploy`)."""
