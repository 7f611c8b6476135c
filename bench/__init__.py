"""Side-by-side benchmark of freevrrpd and keepalived in the namespace lab (`make bench`).

Run ``python -m bench.run`` (as root); ``--quick`` runs a reduced version in
under a minute.  The report goes to bench/REPORT.md, raw data to bench/out/.
"""
