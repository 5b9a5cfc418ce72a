"""Authentication, authorization and accounting of remote-access subscribers.

`radius` talks RADIUS over UDP, `users` holds the local users, `pools` the
address pools, and `authenticator` applies `aaa authentication xauth`
(RADIUS and local users in the configured order).
"""
