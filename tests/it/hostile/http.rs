// HTTP limits, sessions and login throttling (issue 12, parts 3 to 8): the `http` branch.
