-- A message from a client SPF authorises: every stage continues, end of
-- message inserts Authentication-Results (spf=pass, authserv-id mx.test) and
-- removes the forged one claiming mx.test; the message is accepted.
-- Run by test/unit/milter-miltertest.test.ts: miltertest -D port=N -s accept.lua

conn = mt.connect("inet:" .. port .. "@127.0.0.1")
if conn == nil then error("mt.connect() failed") end
if mt.negotiate(conn, nil, nil, nil) ~= nil then error("mt.negotiate() failed") end
if not mt.test_action(conn, SMFIF_ADDHDRS) then error("ADDHDRS not requested") end
if not mt.test_action(conn, SMFIF_CHGHDRS) then error("CHGHDRS not requested") end

mt.macro(conn, SMFIC_CONNECT, "j", "mx.test", "{client_ptr}", "mail.spf-ok.test")
if mt.conninfo(conn, "mail.spf-ok.test", "192.0.2.10") ~= nil then error("mt.conninfo() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("connect not continued") end
if mt.helo(conn, "mail.spf-ok.test") ~= nil then error("mt.helo() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("helo not continued") end
mt.macro(conn, SMFIC_MAIL, "i", "4QX1Z2")
if mt.mailfrom(conn, "<alice@spf-ok.test>") ~= nil then error("mt.mailfrom() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mail not continued") end
if mt.rcptto(conn, "<bob@dest.test>") ~= nil then error("mt.rcptto() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("rcpt not continued") end
if mt.data(conn) ~= nil then error("mt.data() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("data not continued") end

mt.header(conn, "From", "alice@spf-ok.test")
mt.header(conn, "To", "bob@dest.test")
mt.header(conn, "Subject", "miltertest")
mt.header(conn, "Authentication-Results", "mx.test; dkim=pass header.d=bank.example")
if mt.eoh(conn) ~= nil then error("mt.eoh() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("eoh not continued") end
if mt.bodystring(conn, "Hello from miltertest.\r\n") ~= nil then error("mt.bodystring() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("body not continued") end
if mt.eom(conn) ~= nil then error("mt.eom() failed") end
if mt.getreply(conn) ~= SMFIR_ACCEPT then error("message not accepted") end

if not mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results") then error("no Authentication-Results inserted") end
ar = mt.getheader(conn, "Authentication-Results", 0)
if ar == nil or not string.find(ar, "mx.test; spf=pass smtp.mailfrom=spf-ok.test", 1, true) then error("Authentication-Results: " .. tostring(ar)) end
if not mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results") and not mt.eom_check(conn, MT_HDRCHANGE, "Authentication-Results") then
  error("the forged Authentication-Results was not removed")
end
mt.disconnect(conn)
mt.echo("accept.lua: ok")
