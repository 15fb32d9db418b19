select o.order_id, c.customer_id, c.name, o.amount
from {{ ref('stg_orders') }} o
join {{ ref('stg_customers') }} c on c.customer_id = o.customer_id
