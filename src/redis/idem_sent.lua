-- idem_sent.lua - not written yet (placeholder)
return 0
