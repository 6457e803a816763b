"""The pure meter core shared by the batch generator and the live loop: meter state and stepping, the fleet's meters
and fault injection."""
