"""The task language: vocabulary, number encoding, problem generators, schemes and checking."""
