"""The embedded local AWS behind ``make up`` and the end-to-end tests. Never deployed.

It reads template.yaml through the SAM translator and brings the stack up on moto, in this one
process: tables, queues, SES identities, functions (their handlers called in-process), state
machines, HttpApi routes on 127.0.0.1 and DynamoDB stream pollers. There is no second list of
resources: adding a function or a route to the template needs no change here.
"""

from tsunagu_local.moto_imports import defer_unused_moto_packages

defer_unused_moto_packages()
