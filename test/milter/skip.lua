-- A body over milter.max_body (4096 bytes in the test): the milter answers a
-- body chunk past the cap with SKIP, then decides on what it read.
-- Run by test/unit/milter-miltertest.test.ts: miltertest -D port=N -s skip.lua

conn = mt.connect("inet:" .. port .. "@127.0.0.1")
if conn == nil then error("mt.connect() failed") end
if mt.negotiate(conn, nil, nil, nil) ~= nil then error("mt.negotiate() failed") end
if not mt.test_option(conn, SMFIP_SKIP) then error("SKIP not requested") end
if mt.conninfo(conn, "mail.spf-ok.test", "192.0.2.10") ~= nil then error("mt.conninfo() failed") end
if mt.mailfrom(conn, "<alice@spf-ok.test>") ~= nil then error("mt.mailfrom() failed") end
if mt.rcptto(conn, "<bob@dest.test>") ~= nil then error("mt.rcptto() failed") end
mt.header(conn, "From", "alice@spf-ok.test")
if mt.eoh(conn) ~= nil then error("mt.eoh() failed") end
line = string.rep("x", 78) .. "\r\n"
if mt.bodystring(conn, string.rep(line, 40)) ~= nil then error("mt.bodystring() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("first chunk not continued") end
if mt.bodystring(conn, string.rep(line, 40)) ~= nil then error("mt.bodystring() failed") end
if mt.getreply(conn) ~= SMFIR_SKIP then error("no SKIP past max_body") end
if mt.eom(conn) ~= nil then error("mt.eom() failed") end
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("message not accepted") end
mt.disconnect(conn)
mt.echo("skip.lua: ok")
