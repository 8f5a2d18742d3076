select id as payment_id, {{ money_macros.cents_to_dollars('amount_cents') }} as amount
from {{ ref('raw_payments') }}
