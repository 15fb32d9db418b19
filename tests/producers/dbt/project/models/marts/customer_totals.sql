select customer_id, name, count(*) as orders, sum(amount) as total
from {{ ref('customer_orders') }}
group by customer_id, name
