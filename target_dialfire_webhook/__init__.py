"""target-dialfire-webhook: POSTs each Dialfire transaction to a web service (not built yet).

The package exists so that `meltano.yml` can declare the plugin and its settings today; the
delivery itself (ledger of new/updated, retries, signatures) is the next planned work.
"""
