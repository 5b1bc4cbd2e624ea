-- idem_begin.lua - not written yet (placeholder)
return 0
