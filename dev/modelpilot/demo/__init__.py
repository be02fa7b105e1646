"""`modelpilot demo`: the whole platform's main loop on the local machine, and its HTML report.

Modules: `flow` (the steps), `supervisor` (every child stopped on exit or Ctrl-C), `localplane` and
`wiring` (local processes for what the operator created), `traffic` (simulated users), `timeline`,
`view` and `report` (what the demo saw, shown live and as `.demo/report.html`).
"""
