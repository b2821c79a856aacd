"""Word lists the generated text and names are drawn from, chosen for the quirks that break replication.

Accents and their ASCII twins, case twins, non-Latin scripts, emoji, NBSP and ZWSP, CR LF and trailing
spaces: each is here because some collation, encoding or trimming step mishandles it.
"""

WORDS = (  # noqa: SIM905 (word lists read better as text)
    "the a an of to in is it that for on with as this be are you can I not have but or if by from how "
    "what when use using code value function class method object string list array file data table query "
    "server database column row index key error exception null return type int long double var public "
    "static void new private get set loop thread memory performance test example question answer problem "
    "solution javascript jquery python java c# .net asp.net sql linq regex xml json html css ajax iphone "
    "android windows linux git svn visual-studio eclipse compile runtime debug release build deploy "
    "version library framework api request response session cookie cache user password form button event "
    "handler callback simply just also however because therefore maybe probably actually really here "
    "there works doesn't can't won't I'm it's you're naïve café résumé façade Zürich São Paulo Ångström "
    "Łódź Ελληνικά Москва 日本語 中文 한국어 עברית العربية"
).split()
SPECIALS = ["\r\n", "\r\n\r\n", "\n", "\t", "\u00a0", "\u200b", "😀", "🚀", "👍", "𝔘𝔫𝔦", "🤔", "™", "…", "—"]


HTML_BREAKS = [
    "</p>\r\n\r\n<p>",
    "</p>\r\n\r\n<p>",
    "</p>\n\n<p>",
    "</p>\r\n\r\n<pre><code>for (int i = 0; i &lt; n; i++)\r\n{\r\n    total += values[i];\r\n}\r\n"
    "</code></pre>\r\n\r\n<p>",
    "</p>\r\n\r\n<blockquote>\r\n  <p>quoted</p>\r\n</blockquote>\r\n\r\n<p>",
]
PLAIN_BREAKS = [". ", ". ", ". ", ".\r\n", "? "]


FIRST_NAMES = (  # noqa: SIM905 (word lists read better as text)
    "José Jose jose JOSE Zoë Zoe Jürgen Jurgen André Andre Ana Anna anna Björn Bjorn François Francois "
    "Łukasz Lukasz John Jon Mark Marc Sarah Sara Mike Michael Chris Dave David Peter Paul Tom Tim Jeff "
    "Joel Kevin Brian Brent Erin Rachel Nick Ivan Иван Олег 太郎 Hiro Wei Mohammed محمد Priya Aarav Søren "
    "Ines Inês"
).split()
LAST_NAMES = (  # noqa: SIM905 (word lists read better as text)
    "Smith smith Müller Muller Mueller Núñez Nunez García Garcia Skeet Atwood Spolsky Ozar Gravell "
    "Lippert Nguyen Kim Lee O'Brien Dupont Rossi Kowalski Ivanov Иванов Tanaka 山田 Chen Patel Hansen "
    "Larsen Berg"
).split()
BADGE_NAMES = (  # noqa: SIM905 (word lists read better as text)
    "Teacher|Student|Editor|Supporter|Critic|Autobiographer|Scholar|Commentator|Nice Answer|"
    "Popular Question|Notable Question|Famous Question|Good Answer|Great Answer|Yearling|Enlightened|"
    "Necromancer|Nice Question|Good Question|Great Question|Citizen Patrol|Organizer|Tumbleweed|"
    "Self-Learner|Revival|Guru|Favorite Question|Stellar Question|Pundit|Civic Duty|Cleanup|Disciplined|"
    "Peer Pressure|Mortarboard|Epic|Legendary|Fanatic|Enthusiast|Populist|Taxonomist|Beta|Strunk & White|"
    "Copy Editor|Sportsmanship|c#|java|.net|python|c++|sql-server|javascript|jquery|asp.net|iphone|"
    "android|regex|linq|wpf"
).split("|")
TAG_NAMES = (  # noqa: SIM905 (word lists read better as text)
    "c# java .net php javascript jquery python c++ iphone asp.net sql mysql android html css "
    "ruby-on-rails objective-c sql-server ruby c windows wpf linq xml ajax regex database asp.net-mvc "
    "django silverlight visual-studio linux flex performance git multithreading arrays string winforms "
    "wcf tsql unit-testing oracle vb.net cocoa api algorithm web-services hibernate spring json security "
    "forms c#-4.0 .net-3.5"
).split()
LOCATIONS = [
    "Seattle, WA",
    "London, United Kingdom",
    "London",
    "london",
    "São Paulo, Brazil",
    "Sao Paulo, Brazil",
    "Zürich, Switzerland",
    "Zurich, Switzerland",
    "München, Germany",
    "Montréal, QC",
    "Kraków, Poland",
    "Москва",
    "北京",
    "Bangalore, India",
    "New York, NY",
    "Reading, United Kingdom ",
    "Earth",
    "Sydney,\u00a0Australia",
    "Tel Aviv 🇮🇱",
    "Paris, France",
]
DOMAINS = ["example.com", "blog.example.org", "github.com", "stackoverflow.com", "my-site.net", "bücher.de"]
