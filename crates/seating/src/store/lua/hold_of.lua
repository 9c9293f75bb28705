-- A user's active hold on a show ('' when none). KEYS: user key. ARGV: base.
return mine(ARGV[1], KEYS[1])
