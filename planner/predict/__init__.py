"""Models that predict test-time-scaling accuracy from a few recorded samples per problem."""
