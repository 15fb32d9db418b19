-- Fails on purpose: the run's FAIL event carries PostgreSQL's message.
select customer_id, total / 0 as per_nothing from {{ ref('customer_totals') }}
