"""The data of reply splitting: attribution verbs and openers, separators, header-field
names, mobile footers, in the languages we meet. Pure data; imports only ``re``.

Adding a language or a client's phrasing is an edit here; ``mail.quotes`` is the engine.
"""

from __future__ import annotations

import re

# Attribution headers are short; anything longer is prose, and capping the
# length also caps the cost of the unanchored searches below.
_MAX_HEADER_CHARS = 400
# How many lines above the line ending in "wrote:" a wrapped header may start.
_HEADER_WRAP_LINES = 2
# Signatures are short. An RFC 3676 "-- " line is a deliberate marker, so it
# may introduce a somewhat longer block than the bare "--" / "__" lines, which
# also occur as ordinary separators.
_SIG_MAX_LINES = 10
_RFC_SIG_MAX_LINES = 15
# Footers and sign-offs are one short line; longer lines are prose.
_FOOTER_MAX_CHARS = 120
_SIGNOFF_MAX_CHARS = 40

# The verb of an attribution line in the languages we meet. Latin-script words
# need a word boundary ("rewrote" is not a header); CJK words have none.
_WROTE_WORDS = (
    r"(?:\b(?:wrote|writes|schrieb|geschrieben|a\s+écrit|escribió|escribio|ha\s+scritto"
    r"|scrisse|schreef|geschreven|escreveu|skrev|pisze|napisał(?:\(a\)|a)?"
    r"|napisal(?:\(a\)|a)?|napisana|написал(?:\(а\)|а)?|пишет|пише|написав(?:\(ла\)|ла)?"
    r"|kirjoitti|napsal(?:\(a\)|a)?|írta|yazdı|έγραψε|a\s+scris)"
    r"|のメッセージ|は書きました|写道|寫道|작성)"
)
# "<name> wrote:" with nothing after the verb (lead-less forms: "Bob skrev:",
# "… пишет:", "… 写道：").
_WROTE_AT_END = re.compile(_WROTE_WORDS + r"\s*[:：]\s*$", re.IGNORECASE)
# Verb followed by a short name/address tail ("Am … schrieb Bob <b@x>:").
_WROTE_TAIL = re.compile(_WROTE_WORDS + r"[^:：]{0,80}[:：]\s*$", re.IGNORECASE)
# Hungarian Gmail: "<name> ezt írta (időpont: <date>):".
_WROTE_PAREN = re.compile(_WROTE_WORDS + r"\s*\([^()]{0,80}\)\s*[:：]\s*$", re.IGNORECASE)
# "<name> schrieb am 22.11.2026 um 10:00:" puts the date after the verb.
_WROTE_THEN_DATE = re.compile(
    r"\b(?:wrote|schrieb|skrev|schreef|a\s+écrit)\s+(?:am|on|op|den|le)\s.{1,60}[:：]\s*$",
    re.IGNORECASE,
)
# How attribution headers begin. Case-sensitive on purpose: the lowercase words
# ("on", "am", "le") start ordinary sentences far more often than headers do.
_OPENER = re.compile(
    r"(?:-+\s*)?(?:(?:On|Am|Le|El|Il|Op|Em|Den|Dne|Dnia|W\s+dniu|Wiadomość\s+napisana\s+przez"
    r"|В|På)\s|在|\d)"
)
# Real headers carry a date, a time or an address; a sentence such as "On the
# phone you wrote:" does not, and must not cut away the text after it.
_DATEISH = re.compile(r"\d[:.]\d\d|(?:19|20)\d\d|\d年|@")
_TIME = re.compile(r"\d[:.]\d\d")
# Gmail in several languages writes only "<date> <time>, <name> <addr>:"; the
# bracket keeps "Tomorrow, 10:30, mail bob@example.com:" a sentence.
_ADDR_END = re.compile(r"@[^\s@<>()]*[>)]\s*[:：]\s*$")
_DATE_START = re.compile(r"\d|[^\W\d_]{1,12}[.,]")

# Outlook/Thunderbird/Gmail separators, matched against the whole stripped line.
_SEPARATOR = re.compile(
    r"-{2,}\s*(?:original message|original-nachricht|originalnachricht"
    r"|ursprüngliche nachricht|message d'origine|message d’origine|mail original"
    r"|mensaje original|message original|messaggio originale|oorspronkelijk bericht"
    r"|opprinnelig melding"
    r"|oprindelig meddelelse|ursprungligt meddelande|alkuperäinen viesti|původní zpráva"
    r"|pôvodná správa|oryginalna wiadomość|wiadomość oryginalna|исходное сообщение"
    r"|исходное письмо|mensagem original|eredeti üzenet|orijinal ileti|reply message"
    r"|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado"
    r"|messaggio inoltrato|doorgestuurd bericht|videresendt melding|videresendt meddelelse"
    r"|vidarebefordrat meddelande|välitetty viesti|přeposlaná zpráva|przekazana wiadomość"
    r"|wiadomość przekazana dalej|пересылаемое сообщение|mensagem encaminhada"
    r"|továbbított üzenet|továbbított levél|iletilen ileti|原始邮件|原始郵件|转发邮件"
    r"|転送メッセージ|転送されたメッセージ|元のメッセージ)\s*-*",
    re.IGNORECASE,
)
# Apple Mail's forward introduction, matched against the whole stripped line.
_FORWARD_INTRO = re.compile(
    r"(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message réexpédié|début du message transféré|inicio del mensaje reenviado"
    r"|comienzo del mensaje reenviado|inizio messaggio inoltrato|begin doorgestuurd bericht"
    r"|início da mensagem reencaminhada|início da mensagem encaminhada"
    r"|vidarebefordrat brev|vidarebefordrat mejl|videresendt melding|videresendt e-mail"
    r"|начало пересылаемого сообщения|начало переадресованного сообщения"
    r"|転送されたメッセージ|välitetty viesti alkaa|początek przekazywanej wiadomości)"
    r"\s*[:：]?",
    re.IGNORECASE,
)

# Header-block field names, casefolded, as Outlook and friends write them.
_FROM_KEYS = frozenset(
    {
        "from", "von", "de", "da", "van", "från", "fra", "od", "от", "від", "от кого",
        "发件人", "寄件者", "寄件人", "差出人", "送信者", "lähettäjä", "feladó", "kimden",
        "afsender", "avsändare", "remetente", "mittente", "expéditeur", "absender",
        "odesílatel", "odosielateľ", "보낸 사람", "από", "de la", "frá", "saatja",
    }
)  # fmt: skip
_OTHER_KEYS = frozenset(
    {
        "sent", "date", "to", "cc", "bcc", "subject", "reply-to", "sent at",
        "gesendet", "datum", "an", "kopie", "betreff",
        "envoyé", "à", "objet", "a",
        "enviado", "enviado el", "fecha", "para", "asunto", "cco",
        "inviato", "data", "oggetto",
        "verzonden", "aan", "onderwerp",
        "skickat", "till", "ämne", "kopia",
        "sendt", "dato", "til", "emne", "kopi",
        "wysłano", "do", "temat", "dw",
        "отправлено", "дата", "кому", "тема", "копия", "надіслано", "копія",
        "发送时间", "日期", "收件人", "抄送", "主题", "寄件日期", "收件者", "副本", "主旨",
        "送信日時", "日付", "宛先", "件名",
        "lähetetty", "päivämäärä", "vastaanottaja", "aihe", "kopio",
        "elküldve", "dátum", "címzett", "tárgy", "másolatot kap",
        "gönderildi", "tarih", "kime", "konu", "bilgi",
        "odesláno", "komu", "předmět",
        "enviada em", "enviado em", "assunto",
        "στάλθηκε", "προς", "θέμα",
        "trimis", "către", "subiect",
        "보낸 날짜", "받는 사람", "제목", "참조",
    }
)  # fmt: skip
_KEY_SCAN = 24  # field names sit at the start of the line
# The mbox postmark BSD mailx's ~m puts above the header block it quotes, indented:
# "\tFrom support@example.org Thu Dec  3 07:20:05 2026".
_POSTMARK = re.compile(r"[ \t]+From \S{1,320} +[A-Z][a-z]{2} [A-Z][a-z]{2} +\d")

# One short phrase: at most six words and no commas, so that "Sent from my
# desk, is much easier then my mobile phone." stays text.
_PHRASE = r"[\w®™&'’./+()-]+(?: [\w®™&'’./+()-]+){0,5}"
# Footers name the device or the app. Without a possessive ("my iPhone") the
# name must be a known one, so "Sent from home" or "Sent from a magnificent
# torch of pixels" (a person's own words) stay text.
_DEVICE = (
    r"(?:iphone|iphonu|ipad|ipod|blackberry|android|mobile|mobil|móvil|movil|cellulare"
    r"|celular|smartphone|handy|samsung|galaxy|huawei|xiaomi|oneplus|pixel|nokia"
    r"|windows phone|mail for windows|mail für windows|mail para windows|outlook|yahoo"
    r"|aol|gmail|proton ?mail|blue ?mail|spark|airmail|sparrow|newton|edison|k-9 mail"
    r"|tutanota|superhuman|zoho|mailbird|fastmail|gmx|web\.de|t-online)"
    # Polish and Turkish inflect the brand after an apostrophe: "iPhone'a".
    r"(?:['’]\w+)?"
)
_OWN = r"(?:my|mon|ma|mi|mio|mia|meu|minha|mijn|min|mitt|mojego|mojej|моего|мого|mého)"
_NAMED = (
    r"(?:" + _OWN + r" " + _PHRASE
    + r"|(?:the |der |dem |la |le |l'|il )?" + _DEVICE + r"(?: " + _PHRASE + r")?)"
)  # fmt: skip
_LINK = r"(?:\s*[(<\[]\S+[)>\]])?"
_MOBILE_FOOTER = re.compile(
    # The verbs before a named device share one _NAMED: written out after each of
    # them, the pattern took 80 ms to compile in every process that imports it.
    r"(?:(?:sent (?:from|with|via|using|by) "
    + r"|gesendet (?:von|mit|über|vom) (?:meine[mr]? )?"
    + r"|envoy[ée] (?:de|depuis|à partir de|avec|du) "
    + r"|enviado (?:desde|con|do|de|pelo|a partir do|com) "
    + r"|inviato (?:da|dal|con) "
    + r"|(?:verzonden|verstuurd) (?:vanaf|met|via|van) "
    + r"|skickat från "
    + r"|sendt fra "
    + r"|wysłane z "
    + r"|отправлено (?:с|из) "
    + r"|odesláno z "
    + r")" + _NAMED
    + r"|get outlook for (?:ios|android|mac|windows)"
    + r"|von meine[mr]? " + _PHRASE + r" gesendet"
    + r"|lähetetty " + _PHRASE
    + r"|" + _DEVICE + r" ?から送信"
    + r"|(?:发自我的|發自我的|来自我的|來自我的) ?" + _DEVICE
    + r"|从我的 ?" + _DEVICE + r" ?发送"
    + r"|" + _DEVICE + r" gönderildi"
    + r")" + _LINK,
    re.IGNORECASE,
)  # fmt: skip
# "-Abhishek Kona" / "-- Tim": a name of at most four words after one or two
# dashes, capitalised (checked in code) so a "-milk" list item is not a name.
_DASH_SIGNOFF = re.compile(r"-{1,2} ?([^\W\d_][\w.'’-]*)(?: [\w.'’-]+){0,3}")

_RULE_CHARS = "-_=*~─━—– \t"


# An attribution without its colon ends with the verb ("On …, Bob <b@x> wrote").
_WROTE_BARE = re.compile(_WROTE_WORDS + r"\s*$", re.IGNORECASE)

# A quoted line wrapped by the client is long; its lost continuation is shorter.
_WRAP_MIN_CHARS = 50

# Closing formulas: the person's words, kept; but their name block ends the text,
# so a header-less quote below it is history. A whole short line, optional comma.
_CLOSING = re.compile(
    r"(?:(?:best|kind|warm|many|with kind|with best)\s+(?:regards|wishes)|regards|best"
    r"|cheers|thanks(?: again| a lot)?|thank you(?: very much)?|many thanks|sincerely"
    r"|yours(?: sincerely| truly)?|all the best|take care"
    r"|mit freundlichen grüßen|mit freundlichen gruessen|freundliche grüße|viele grüße"
    r"|beste grüße|liebe grüße|lg|mfg|gruß|grüße|danke(?: schön)?|vielen dank"
    r"|cordialement|bien cordialement|bien à vous|salutations(?: distinguées)?|merci(?: beaucoup)?"
    r"|saludos(?: cordiales)?|un saludo|atentamente|gracias|muchas gracias"
    r"|cordiali saluti|distinti saluti|saluti|grazie(?: mille)?"
    r"|met vriendelijke groet(?:en)?|vriendelijke groet(?:en)?|groeten|bedankt"
    r"|med vänlig hälsning|vänliga hälsningar|med venlig hilsen|med vennlig hilsen|hilsen"
    r"|atenciosamente|abraços|obrigad[oa]|pozdrawiam|z poważaniem|s pozdravem"
    r"|с уважением|спасибо|よろしくお願いします|よろしくお願いいたします|此致|谢谢|謝謝)"
    r"\s*[,.!]?",
    re.IGNORECASE,
)
_NAME_MAX_LINES = 4
_NAME_MAX_CHARS = 60
_POSTSCRIPT = re.compile(r"p\.?\s?p?\.?\s?s\b|ps:", re.IGNORECASE)
# First words of the closings and footers above: a set lookup spares the two
# expressions on the lines of ordinary prose (non-ASCII first words always try them).
_CLOSING_FIRST_WORDS = frozenset(
    {
        "best", "kind", "warm", "many", "with", "regards", "cheers", "thanks", "thank",
        "sincerely", "yours", "all", "take", "mit", "freundliche", "viele", "beste", "liebe",
        "lg", "mfg", "danke", "vielen", "cordialement", "bien", "salutations", "merci",
        "saludos", "un", "atentamente", "gracias", "muchas", "cordiali", "distinti", "saluti",
        "grazie", "met", "vriendelijke", "groeten", "bedankt", "med", "hilsen",
        "atenciosamente", "obrigado", "obrigada", "pozdrawiam", "z", "s",
        "sent", "get", "von", "gesendet", "envoye", "enviado", "inviato", "verzonden",
        "verstuurd", "skickat", "sendt", "odeslano",
    }
)  # fmt: skip
# Footers that start with the device ("iPhone から送信", "Galaxy gönderildi").
_DEVICE_WORDS = frozenset({"iphone", "ipad", "android", "galaxy", "samsung", "huawei", "xiaomi"})
