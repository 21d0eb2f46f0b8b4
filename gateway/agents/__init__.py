"""Agents (SRS B.3, journey A.4): autonomous clients that query, decide and rent for a user,
within the budgets and scope they registered with, through asynchronous actions."""
