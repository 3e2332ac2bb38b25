"""Finance exports and management reporting: the monthly compensation workbook, the monthly
statistics (rulebook §3), satisfaction checks and the early warning on returns and complaints.

Nothing here imports Prefect: the flows in ``aftersales/flows/`` (finance, satisfaction,
early_warning) and the CLI (`aftersales export …`) drive these functions.
"""
