"""Generate the demo data set that ships with the curation app.

Running ``python3 curation/demo/generate.py`` writes, next to this script:

* ``support_tickets.jsonl``      -- 480 synthetic customer-support tickets for the
  fictional company Northwind Cloud (no label field);
* ``support_ticket_labels.csv``  -- labels for about 220 of those tickets from three
  imported annotators, in long format (ticket_id, annotator, label, labelled_at);
* ``instructions.jsonl``         -- 94 instruction/response pairs: the support team's published
  macros in the same company's voice, which the app imports as final (reviewed before publication);
* ``instruction_drafts.jsonl``   -- 6 more pairs with deliberately weak draft responses, which the
  app imports for its reviewers to fix (a dataset version includes them once reviewed);
* ``curation_decisions.jsonl``   -- a lead's decisions on the tickets (exclusions of re-sent copies,
  off-task and personal-data tickets; an adjudication for every disputed ticket), which the app
  replays so that the demo ends in an approved dataset version.

Why: a new user should be able to open the app and immediately see realistic work --
disagreeing annotators, near-duplicates, ambiguous items, off-task messages, personal
data to flag and weak responses to fix -- without bringing their own data.

Everything is invented from the templates below (no public data set, no real people;
phone numbers use the fictional 555-01xx range and e-mail addresses use example.net).
The generator uses only the standard library and ``random.Random(20261123)``, so two
runs produce byte-identical files. A summary (counts, label balance, pairwise raw
agreement, planted ticket ids) is printed to stderr.
"""
import csv
import json
import random
import re
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

SEED = 20261123
OUT_DIR = Path(__file__).resolve().parent
N_TICKETS = 480
LICENCE = "CC0-1.0"
LABELS = ["billing", "technical_issue", "account_access", "shipping", "refund_request"]

# Per-annotator error rate on clear tickets (chen.wei is the noisier one) and the
# probability of choosing the *first* of the two plausible labels on ambiguous ones.
ANNOTATORS = {"ana.ferreira": 0.045, "ben.okafor": 0.055, "chen.wei": 0.09}
AMBIGUOUS_FIRST = {"ana.ferreira": 0.7, "ben.okafor": 0.45, "chen.wei": 0.3}
# When an annotator errs, the wrong label is drawn from the labels it is confused with.
CONFUSION = {
    "billing": ["refund_request", "refund_request", "account_access", "technical_issue"],
    "technical_issue": ["account_access", "account_access", "shipping", "billing"],
    "account_access": ["technical_issue", "technical_issue", "billing"],
    "shipping": ["refund_request", "refund_request", "technical_issue"],
    "refund_request": ["billing", "billing", "shipping"],
}

SOFTWARE = ["Northwind Drive", "Northwind Vault", "Northwind Desk"]
HARDWARE = ["Sync Hub S2", "Beacon Mesh Router"]
PRODUCT_POOL = {"billing": SOFTWARE, "technical_issue": SOFTWARE + HARDWARE, "account_access": SOFTWARE,
                "shipping": HARDWARE, "refund_request": SOFTWARE + HARDWARE}
MARKERS = {"hw": HARDWARE, "sw": SOFTWARE, "router": ["Beacon Mesh Router"], "hub": ["Sync Hub S2"],
           "drive": ["Northwind Drive"], "vault": ["Northwind Vault"], "desk": ["Northwind Desk"]}
SOURCES = {"q2": "northwind-helpdesk-export-2026-q2", "q3": "northwind-helpdesk-export-2026-q3",
           "chat": "northwind-livechat-archive-2026"}
CHANNELS = ["email", "chat", "web_form"]
CHANNEL_WEIGHTS = [0.45, 0.3, 0.25]

PLANS = ["Starter", "Team", "Business", "Family"]
CARRIERS = ["UPS", "DHL Express", "FedEx", "DPD", "Royal Mail", "PostNL"]
CITIES = ["Leeds", "Porto", "Austin", "Rotterdam", "Dublin", "Lyon", "Denver", "Kraków", "Osaka", "Nairobi"]
COUNTRIES = ["Norway", "Switzerland", "Canada", "Ireland", "Portugal", "Poland", "Japan", "Iceland"]
ERRORS = ["E-4031", "0x80070005", "SYNC_TIMEOUT", "error 503", "E-12", "ERR_QUOTA_HEADER", "NW-AUTH-19"]
SYSTEMS = ["Windows 11", "macOS 15", "Ubuntu 24.04", "iOS 19", "Android 16", "Windows 10"]
VERSIONS = ["4.2.1", "4.3.0", "4.3.2", "5.0.0", "5.0.1"]
FEATURES = ["shared folders", "file versioning", "offline mode", "scheduled backups", "the calendar sync"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
NAMES = ["Priya", "Tomás", "Aisha", "Lukas", "Mei", "Olusegun", "Sofia", "Jonas", "Fatima", "Daniel",
         "Ingrid", "Kenji", "Chloé", "Mateus", "Hannah", "Rafael", "Yusuf", "Elena", "Noah", "Amara"]


def _money(r, v):
    cur = v.setdefault("_cur", r.choice(["$", "€", "£"]))
    return f"{cur}{r.randint(6, 420)}.{r.choice(['00', '99', '50', '49'])}"


def _date_phrase(r, v):
    # No month or year: a ticket must never mention a date after its own created_at.
    day = r.randint(1, 28)
    suffix = "th" if 10 <= day <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return r.choice([f"the {day}{suffix}", r.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])])


SLOTS = {
    "order": lambda r, v: f"NW-{r.randint(100000, 999999)}",
    "invoice": lambda r, v: f"INV-2026-{r.randint(1000, 9999)}",
    "amount": _money, "amount2": _money, "date": _date_phrase,
    "fee": lambda r, v: f"{v.setdefault('_cur', r.choice(['$', '€', '£']))}{r.randint(4, 34)}.99",
    "plan": lambda r, v: r.choice(PLANS),
    "seats": lambda r, v: str(r.randint(8, 60)),
    "n": lambda r, v: str(r.randint(2, 5)),
    "days": lambda r, v: str(r.randint(3, 16)),
    "years": lambda r, v: str(r.randint(2, 9)),
    "last4": lambda r, v: f"{r.randint(0, 9999):04d}",
    "carrier": lambda r, v: r.choice(CARRIERS),
    "city": lambda r, v: r.choice(CITIES),
    "country": lambda r, v: r.choice(COUNTRIES),
    "error": lambda r, v: r.choice(ERRORS),
    "os": lambda r, v: r.choice(SYSTEMS),
    "version": lambda r, v: r.choice(VERSIONS),
    "feature": lambda r, v: r.choice(FEATURES),
    "month": lambda r, v: r.choice(MONTHS[:3]),
    "percent": lambda r, v: r.choice(["10", "15", "20", "25"]),
    "po": lambda r, v: f"PO-{r.randint(10000, 99999)}",
    "case": lambda r, v: f"CS-{r.randint(40000, 99999)}",
    "name": lambda r, v: r.choice(NAMES),
    "sw": lambda r, v: r.choice(SOFTWARE),
    "hw": lambda r, v: r.choice(HARDWARE),
}

# ---- Ticket templates --------------------------------------------------------------
# A leading marker ("[hw] ", "[sw] ", "[router] ", ... see MARKERS) restricts the
# product; otherwise it comes from PRODUCT_POOL for the label.
TEMPLATES = {
    "billing": [
        "I was charged {amount} on {date} but my plan is supposed to be {amount2} a month. Can you explain the difference?",
        "Where can I download the invoice {invoice}? Our accounts team needs it for the quarter close.",
        "Our company VAT number is missing from the last three invoices. Can you reissue them with the VAT ID on them?",
        "I need to update the credit card on file, the old one ending in {last4} expired last month.",
        "Why did my {product} bill go up? Nobody told us about a price change.",
        "We added {seats} seats to our {plan} plan in the middle of the cycle. How is the prorated amount calculated?",
        "Can we switch from monthly to annual billing and keep the discount we were offered in {month}?",
        "Invoice {invoice} is addressed to the wrong company name. It should be our parent company, not the subsidiary.",
        "My card keeps getting declined when I try to pay for the {plan} plan, but the bank says nothing is wrong on their side.",
        "Do you accept payment by bank transfer? Our finance department doesn't allow company cards anymore.",
        "There is a pending charge of {amount} from Northwind Cloud that I don't recognise. What is it for?",
        "We downgraded to {plan} on {date} but the latest invoice still shows the old price.",
        "Could you send me all invoices from 2026 as PDFs? The portal only shows the last six.",
        "I'd like to change the billing contact on our account to someone in our finance team.",
        "The tax on invoice {invoice} looks wrong. We are a registered non-profit and should be exempt.",
        "How much would it cost to move from {plan} to Business with {seats} users?",
        "The payment page shows an error right after I enter my card details. Is there another way to pay?",
        "Our purchase order number has to appear on the invoice or accounts payable will reject it. The PO is {po}.",
        "Your sales rep promised us {percent}% off for the first year but it hasn't been applied to {invoice}.",
        "When does my trial end, and when will I be charged for the first time?",
        "We got a payment reminder for {invoice} but we paid it on {date}. Please check your records.",
        "[hw] The invoice for our {product} order {order} doesn't list the serial numbers and our asset register needs them.",
        "Is there a student or education price for {product}? I'm a teacher and would use it with my class.",
        "Our subscription renewed automatically at {amount}. Can you confirm what is included at that price?",
        "Please stop using the card ending {last4}, we moved everything to the company account. The new card is already added.",
        "Can I pay for two separate workspaces with a single invoice?",
        "The currency on my invoices changed from GBP to EUR without any warning. Can it be switched back?",
        "hey what's the price difference between Team and Business per seat? thinking of upgrading",
    ],
    "technical_issue": [
        "[drive] {product} keeps showing '{error}' when I try to sync a folder with more than a few thousand files.",
        "[hw] My {product} restarts by itself every couple of hours. The light goes orange and then it reboots.",
        "Since updating to version {version} the app crashes on startup on {os}.",
        "[sw] Uploads get stuck at 99% and never finish. Small files are fine, anything over 1 GB fails.",
        "[hw] The {product} doesn't show up on my network anymore after the firmware update last night.",
        "[sw] Shared folders are not updating for my colleagues, they still see the old version of the files.",
        "[sw] The desktop client sits at 100% CPU even when nothing is syncing and my laptop fan never stops.",
        "[router] Wifi speed drops to almost nothing in the evenings since we set up the {product}. Wired is fine.",
        "[vault] Scheduled backups in {product} stopped running on {date}. No error, they just don't start.",
        "[sw] I get {error} when I try to restore an older version of a file.",
        "The mobile app shows a blank white screen after the logo on {os}. Reinstalling didn't help.",
        "[sw] Search in {product} doesn't find files I know are there, even when I type the exact file name.",
        "[hw] The firmware update failed halfway and now the {product} only blinks red. Is it bricked?",
        "[sw] Your API returns 500 errors for about a third of our requests since this morning.",
        "[desk] Reports exported from {product} have all the dates shifted by one day.",
        "Notifications stopped arriving on my phone, even though they are switched on in the settings.",
        "[hub] The fan on my {product} makes a grinding noise and the unit gets very hot to the touch.",
        "[desk] The integration with our calendar stopped working, new tickets don't create events anymore.",
        "Your status page says everything is operational but nothing loads for us in {city}.",
        "[drive] File names with accents (like café.docx) get turned into garbage after syncing.",
        "[router] The {product} drops the connection every time the microwave is on. Which channel should I use?",
        "[sw] After the {version} update the sidebar is gone and I can't find any of my projects.",
        "[drive] Conflict copies are being created for every file we open, even when only one person edits it.",
        "I'm getting a certificate warning in the browser when I open the web app.",
        "[hw] Port 2 on the {product} stopped working. Anything plugged into it gets no link light.",
        "[sw] Importing a CSV fails on line 1 with '{error}', the file opens fine in Excel.",
        "The app has been extremely slow since last week, every click takes several seconds.",
        "[sw] The sign-in page works but after logging in I just get a spinning wheel forever.",
    ],
    "account_access": [
        "I can't log in, it says my password is incorrect even after resetting it twice.",
        "I lost my phone and with it my two-factor codes. How do I get back into my account?",
        "The password reset email never arrives. I've checked spam and the promotions tab.",
        "My account has been locked after too many attempts. Please unlock it, I have a deadline today.",
        "Our admin left the company and nobody else has admin rights to the {product} workspace. How can we get control back?",
        "I need to change the email address I log in with because our old domain is being shut down.",
        "I got an alert about a sign-in from {city} that wasn't me. Please secure my account.",
        "Logging in with our Microsoft account gives 'user not assigned' since {date}.",
        "I was removed from my team's workspace by mistake. Can you add me back? The owner is on holiday.",
        "How do I transfer ownership of the workspace to my colleague before I leave?",
        "The magic sign-in link expires before I can even click it.",
        "Somehow I have two accounts with the same email and I can't get into the one with my files.",
        "My authenticator app was reset and now the codes for {product} don't work.",
        "New team members never receive their invitation emails, so they can't create an account.",
        "It keeps saying 'session expired' every few minutes and logs me out of {product}.",
        "[hw] I forgot which email I signed up with. Can you find my account using order number {order}?",
        "[hw] I can't sign in to the {product} admin page, the default password on the sticker doesn't work.",
        "Our workspace shows as suspended and nobody on the team can log in. What happened?",
        "How can I require two-factor authentication for everyone in our workspace?",
        "The recovery codes I saved when I set up 2FA are all being rejected.",
        "My username was changed without my permission and I can't sign in with the old one.",
        "I can sign in on the web but the desktop app keeps asking for my password again and again.",
        "We need to revoke access for a former employee right now, they still have {product} on their laptop.",
        "The verification SMS never arrives on my phone. I'm in {city} if that matters.",
        "The captcha on the login page fails every single time, I'm definitely not a robot.",
        "My father passed away and we'd like access to the family photos in his {product} account. What do you need from us?",
        "I changed my password on {date} and since then my phone can't log in at all.",
    ],
    "shipping": [
        "My order {order} was supposed to arrive on {date} and it's still not here.",
        "Tracking for {order} hasn't updated in {days} days. It only says 'label created'.",
        "The {carrier} driver marked my parcel as delivered but there was nothing at my door.",
        "Can I change the delivery address for order {order}? We moved offices last week.",
        "Do you ship the {product} to {country}? The checkout doesn't list my country.",
        "The box arrived but only one of the two {product} units was inside.",
        "How long does express delivery to {country} take?",
        "My parcel is stuck in customs and {carrier} says they need an invoice from you.",
        "Can you combine my two open orders into one shipment? The second is {order}.",
        "The confirmation email says dispatched, but {carrier} has no record of the tracking number.",
        "I need the {product} by {date} for an office opening. Will standard delivery make it?",
        "I was asked to pay {amount} import duty on delivery. Wasn't that included in the price?",
        "Order {order} went to my old address even though I updated my profile.",
        "Can I collect order {order} from a pickup point instead of having it delivered at home?",
        "The tracking link in the dispatch email gives a page not found error.",
        "Order {order} shows as delivered to a neighbour but doesn't say which one.",
        "Still waiting on {order}, placed {days} days ago. Any update at all?",
        "We ordered {n} units of the {product} but the shipping notice only mentions one.",
        "Is it possible to hold the delivery of {order} for a week? Nobody will be in the office.",
        "The courier came while I was out and now I have to drive 40 km to the depot to pick it up.",
        "How much is shipping for a replacement power adapter for the {product}?",
        "My order was split into two parcels and only one of them has arrived so far.",
        "{carrier} says the address for {order} is incomplete. The flat number is 4B, can you update it?",
        "Has my pre-order for the new {product} shipped yet? The page said early next month.",
        "The parcel arrived opened and re-taped. The {product} seems fine but I thought you should know.",
        "Which carrier do you use for {country}? Our building only accepts deliveries before noon.",
    ],
    "refund_request": [
        "[sw] I'd like a refund for my {plan} subscription. I cancelled on {date} but was still charged {amount}.",
        "[hw] Please refund order {order}, I ordered the wrong model.",
        "[hw] I want to return the {product}, it doesn't do what I need. I'm still within the 30 days.",
        "[sw] The annual plan renewed yesterday and I forgot to cancel. Can I get my money back?",
        "[hw] How long does a refund take to reach my card? I sent back {order} {days} days ago.",
        "[sw] We stopped using {product} in {month}. Could you refund the unused months of the annual plan?",
        "[hw] You told me the refund for {order} was issued but nothing has shown up on my statement.",
        "[sw] I want my {amount} back, the service was down for most of the week and we couldn't work.",
        "Can I get a refund instead of store credit? I have no use for the credit.",
        "[hw] Please send a return label for order {order}, the {product} is going back.",
        "[sw] My kid bought the Family plan on my card without asking. Please reverse it.",
        "[sw] I cancelled during the trial but was billed {amount} anyway. I want that reversed.",
        "[hw] The {product} I received has a cracked case. I don't want a replacement, just my money back.",
        "[sw] We bought {seats} seats by mistake and only need {n}. Please refund the difference.",
        "I asked for a refund on {date}, case number {case}. Nobody has answered since.",
        "Your policy says refunds within 30 days and it has only been {days}. Please process mine.",
        "The refund went to my old card, which is closed now. What happens to the money?",
        "[sw] I was promised a partial refund as outage credit. Where is it?",
        "[hw] Please cancel order {order} before it ships and refund me.",
        "[hw] I bought the {product} as a gift but they already have one. Can I return it unopened for a refund?",
        "[sw] I've been charged for a subscription I never signed up for. I want a full refund.",
        "[hw] The price of the {product} dropped by {fee} a week after I bought it. Can you refund the difference?",
        "[hw] Refund for {order} still hasn't arrived. Your colleague said 5-7 business days, it's been {days}.",
        "[sw] Please undo the upgrade to {plan} and refund it, I clicked the button by accident.",
        "[hw] I returned the {product} with {carrier} on {date} and tracking shows you received it. Where is my money?",
        "[hw] Not happy with the {product} at all. I want to send it back and get a refund.",
    ],
}

# Genuinely ambiguous tickets: two plausible labels (first one listed first).
AMBIGUOUS = [
    ("billing", "refund_request", "I was charged twice for {invoice}, {amount} each time. Please sort this out."),
    ("billing", "refund_request", "There are two charges of {amount} on my statement from {date}. I only have one account, one of them needs to be reversed."),
    ("refund_request", "billing", "[sw] You charged me {amount} after I cancelled. Fix it."),
    ("billing", "refund_request", "My invoice is {amount} higher than the quote we agreed. Please correct it and return the difference."),
    ("billing", "refund_request", "Double charge AGAIN this month on the card ending {last4}!!!"),
    ("account_access", "billing", "My payment failed and now I can't log in to the workspace at all. I've updated the card but I'm still locked out."),
    ("account_access", "billing", "Our account was suspended for unpaid invoice {invoice}, but we paid it. Nobody can access anything."),
    ("account_access", "billing", "After the trial ended I can't get into my files anymore. I'm happy to pay but the login page just loops."),
    ("account_access", "billing", "We changed the company credit card yesterday and now nobody on the team can sign in."),
    ("shipping", "refund_request", "[hw] My {product} arrived smashed, the box was crushed on one side. I need a replacement or my money back."),
    ("refund_request", "shipping", "[hw] Order {order} arrived {days} days late, after the event we needed it for. What can you do for us?"),
    ("shipping", "refund_request", "{carrier} lost my package. Please either resend it or refund me, whichever is faster."),
    ("shipping", "refund_request", "[hw] I received the wrong model, I ordered the {product} with the extra ports. Please sort it out."),
    ("technical_issue", "refund_request", "[hw] The {product} stopped working after two weeks. Honestly I'd rather just return it."),
    ("technical_issue", "refund_request", "[sw] Your update broke {feature} and we lost a week of work. We expect some kind of compensation."),
    ("account_access", "technical_issue", "The app says my session is invalid and the reset password link gives {error}."),
    ("account_access", "technical_issue", "2FA codes from the app are always rejected. Could the clock on my phone be wrong?"),
    ("technical_issue", "account_access", "[sw] SSO broke after your update this morning, the whole team is stuck on the login screen."),
    ("technical_issue", "shipping", "[hw] Got the {product} today but it won't power on. The box looked like it had been dropped."),
    ("shipping", "technical_issue", "[hw] The power adapter was missing from the box so I can't even set up the {product}."),
    ("billing", "technical_issue", "The checkout throws {error} when I try to upgrade to {plan}, and I think it charged me anyway."),
    ("billing", "technical_issue", "The usage meter says we're over our storage limit and we're paying extra, but we deleted everything last week."),
    ("refund_request", "account_access", "[sw] I couldn't log in to cancel my subscription so I got charged again. I want that money back."),
    ("billing", "shipping", "[hw] I paid {fee} for express shipping on {order} but it came with standard delivery."),
    ("billing", "shipping", "[hw] Why was I charged shipping on order {order}? The site said free delivery over {amount}."),
    ("refund_request", "shipping", "[hw] I cancelled order {order} and asked for a refund, but it shipped anyway and just arrived."),
    ("billing", "account_access", "I paid for the {plan} plan but my account still shows Starter and the new features are locked."),
    ("account_access", "refund_request", "Please close my account, I don't use it anymore, and refund whatever is left on the annual plan."),
    ("technical_issue", "billing", "[drive] {product} says my storage is full and blocks uploads, but I paid for the 2 TB add-on on {date}."),
    ("shipping", "billing", "[hw] Your invoice for {order} lists 3 units but only 2 were delivered."),
]

EXTRAS = {
    "billing": ["Our finance team is waiting on this.", "We have the month-end close on Friday.", "The account is under our company name."],
    "technical_issue": ["I've already tried turning it off and on again.", "Screenshots attached.", "It started around {date}.", "This is on {os}."],
    "account_access": ["I need access for a client meeting tomorrow.", "My manager needs this sorted today.", "I've tried Chrome and Firefox."],
    "shipping": ["It was a gift so the timing matters.", "The tracking page isn't helping.", "I'm in {country} if that matters."],
    "refund_request": ["I've attached the receipt.", "I'd prefer the money back on the original card.", "I've been a customer for {years} years."],
}
GENERIC_EXTRAS = ["This is the second time I'm writing about this.", "My colleague had the same thing last month.",
                  "Happy to jump on a call if that helps.", "I already searched the help centre but couldn't find anything.",
                  "We're a small team so this really matters to us.", "This is honestly getting ridiculous.",
                  "No rush, whenever you get a chance."]
PREFACES = ["Quick question.", "Writing on behalf of our office in {city}.", "Long-time customer, first time writing in.",
            "Not sure who to ask about this.", "Sorry if this is the wrong place.", "I've been with you for {years} years.",
            "Our IT person is away this week.", "Hoping you can help."]
OPENERS = {"email": ["Hi,", "Hello,", "Dear Northwind support,", "Hi there,", "Good morning,", "Hello team,", "To whom it may concern,"],
           "chat": ["hi", "hello", "hey", "hi there", "Hi!", "good afternoon"],
           "web_form": ["Hello,", "Hi,"]}
CLOSERS = {"email": ["Thanks.", "Thanks in advance!", "Kind regards, {name}", "Best, {name}", "Please advise.",
                     "Regards, {name}", "Thank you for your help.", "Looking forward to your reply."],
           "chat": ["thx", "thanks", "ty", "pls help", "anyone?"],
           "web_form": ["Thanks", "Please respond asap.", "Thank you."]}
# Probability of (opener, preface, extra sentence, closer) by channel.
CHANNEL_STYLE = {"email": (0.75, 0.15, 0.4, 0.6), "chat": (0.5, 0.1, 0.2, 0.3), "web_form": (0.15, 0.15, 0.35, 0.25)}

# Off-task messages: (kind, underlying label or None, text, channel).
OFF_TASK = [
    ("spam", None, "Congratulations! Your business has been selected for a FREE SEO audit. Reply YES to claim your report and rank #1 on Google in 7 days!!!", "web_form"),
    ("spam", None, "We sell verified B2B email lists, 2 million contacts for only $99. Visit www.example-leads.biz today, limited offer.", "email"),
    ("pleasantry", None, "Thanks!", "chat"),
    ("pleasantry", None, "ok thank you, that fixed it :)", "chat"),
    ("test", None, "test test please ignore", "web_form"),
    ("other_language", "account_access", "Olá, não consigo entrar na minha conta desde ontem. Já tentei redefinir a senha mas o e-mail não chega. Podem ajudar?", "email"),
    ("other_language", "shipping", "Hallo, meine Bestellung {order} ist immer noch nicht angekommen. Können Sie bitte nachsehen, wo das Paket ist?", "email"),
]
# Tickets containing invented personal data that reviewers should flag.
PII = [
    ("account_access", "Hi, I still can't get into my account after three resets. Please call me back on +1 206-555-0148 any time before 6pm, my name is Dana Whitcombe.", "email", "Northwind Drive"),
    ("refund_request", "Refund for order {order} please. Put it back on the card ending 4417 and send the confirmation to marcus.lindqvist@example.net, that's my private address.", "web_form", "Beacon Mesh Router"),
]

# ---- Instruction/response templates (prompt, response). {name} is the customer. ----
REPLY_VERBS = ["Write a reply to", "Draft a reply to", "Write a short, friendly reply to", "Reply on behalf of Northwind Cloud support to"]
GREETINGS = ["Hi {name},", "Hello {name},", "Dear {name},"]
SIGNOFFS = ["Best regards,\nNorthwind Cloud Support", "Kind regards,\nThe Northwind Cloud team", "Thanks for your patience,\nNorthwind Support"]
REPLIES = [
    ("whose {hw} order {order} is {days} days late.", "I'm sorry your {hw} hasn't arrived yet. I've checked order {order} and it is held at the {carrier} depot after a missed scan, so I've asked them to prioritise it. If it isn't delivered within two business days, reply to this email and we'll send a replacement by express at no cost."),
    ("who was charged twice for invoice {invoice}.", "Thank you for flagging this, and sorry for the trouble. I can see two payments of {amount} against invoice {invoice}; the second was a duplicate caused by a retry on our payment page. I've refunded it today, and it should appear on your statement within 5-10 business days depending on your bank."),
    ("who is locked out after losing the phone with their authenticator app.", "I'm sorry you're locked out, that's stressful. You can still sign in with one of the recovery codes you saved when you set up two-factor authentication. If you don't have them, use the 'Lost your device?' link on the sign-in page and we'll verify your identity with your billing details, which usually takes less than one business day."),
    ("who wants to cancel their {plan} plan at the end of the month.", "I've noted your request to cancel the {plan} plan. Your workspace stays fully active until the end of the current billing period and you won't be charged again after that. You can export everything from Settings > Data export before then, and we keep your data for 30 days in case you change your mind."),
    ("whose {hw} keeps rebooting every few hours.", "Thanks for the detailed description, it helps a lot. Frequent reboots are most often caused by an underpowered adapter or overheating, so please check that you're using the original power supply and that the vents are not covered. If it still restarts, download the diagnostics file from the admin page (System > Diagnostics) and send it to us; we'll look at it within one business day."),
    ("who received a Beacon Mesh Router with a cracked case.", "I'm sorry the router arrived damaged, that is not the first impression we want you to have. I've created a free replacement for order {order}; it ships within 24 hours and you'll get the tracking link by email. A prepaid return label for the damaged unit is included, and there's no rush to send it back."),
    ("who says the desktop app crashes on startup since version {version}.", "Thanks for letting us know, and sorry for the disruption. We've confirmed a crash in {version} on some {os} machines and a fix is rolling out this week. Until then you can install the previous version from the downloads page; your settings and synced files won't be affected."),
    ("who asks whether there is an education discount for {sw}.", "Thanks for your interest! Accredited schools and universities get 40% off the Team and Business plans, and teachers can use Starter free for a year. Just reply with your institution's website and a work email address and we'll set it up."),
    ("whose refund for order {order} hasn't arrived after {days} days.", "I understand the wait is frustrating. Our records show the refund of {amount} for order {order} was issued on our side, and banks usually take 5-10 business days to show it. If it still isn't visible in three days, reply here and we'll send you the transaction reference so your bank can trace it."),
    ("who wants to change the email address they sign in with.", "Happy to help. You can change your sign-in email under Profile > Email address; we send a confirmation link to both the old and the new address. If you can no longer read the old mailbox, reply from the new address with your workspace name and we'll verify the change manually."),
    ("whose team members aren't receiving invitation emails.", "Sorry about that. Invitations come from no-reply@northwind.example, and some company filters quarantine that address, so please ask your IT team to allow it. In the meantime you can copy an invite link from Settings > Members > Invite via link and share it directly; links are valid for seven days."),
    ("whose parcel was marked as delivered but never arrived.", "I'm sorry your parcel hasn't turned up. I've opened an investigation with {carrier} for order {order}, which usually takes two to three business days. Could you check with neighbours and your building reception in the meantime? If it isn't found, we'll send a replacement or refund you in full, whichever you prefer."),
    ("who is upset about a price increase on their renewal.", "I understand the renewal price came as a surprise, and I'm sorry we didn't make it clearer. The new {plan} price applied from {month}, and the notice went to the account owner on file, which I can see is a former admin. As a goodwill gesture I've applied last year's price to this renewal, and you can change or cancel your plan at any time."),
    ("whose scheduled backups in Northwind Vault stopped running.", "Thanks for reporting this. The most common cause is an expired connection after a password change, so please open Northwind Vault, go to Backups > Sources and click Reconnect on any source marked in yellow. If everything looks healthy, send us the log file from Help > Export logs and we'll investigate."),
    ("who asks how long shipping to {country} takes.", "Thanks for asking! Standard shipping to {country} usually takes 4-7 business days and express takes 2-3, both with tracking. Import duties are included in the checkout price, so there is nothing extra to pay on delivery."),
    ("who needs invoice {invoice} reissued with their VAT number.", "No problem at all. I've added your VAT number to the billing profile and reissued invoice {invoice}; the updated PDF is attached and also available under Billing > Invoices. Future invoices will include it automatically."),
    ("who reports a suspicious sign-in from {city}.", "Thank you for telling us so quickly. I've signed out all active sessions on your account. Please reset your password now and turn on two-factor authentication under Profile > Security. If you notice files or settings you don't recognise, let us know and we'll go through the activity log with you."),
    ("whose order {order} is stuck in customs.", "Sorry for the delay at customs. I've sent the commercial invoice for order {order} directly to {carrier}, which is usually all they need to release the parcel. Tracking should update within one to two business days; if you're asked to pay any duties, forward the message to us first, as those are covered by Northwind Cloud."),
    ("who accidentally bought {seats} seats instead of {n}.", "Thanks for letting us know, it's an easy mistake to make. I've reduced your workspace to {n} seats and issued a prorated credit for the rest, which will appear on your next invoice. If you'd rather have the difference refunded to your card, just reply and I'll switch it."),
    ("who thanks the team after their sync problem was fixed.", "Thank you for the kind words, it's great to hear everything is working again! I'll pass your message on to the engineers who worked on it. If anything else comes up, just reply to this thread and it will come straight back to us."),
    ("whose Sync Hub S2 disappeared from the network after a firmware update.", "Sorry for the trouble after the update. Please unplug the Sync Hub S2 for 30 seconds, plug it back in and wait until the light turns steady white, which can take up to five minutes after an update. If it still doesn't appear, connect it directly to your router with the supplied cable and open find.northwind.example; let us know what that page shows."),
    ("whose uploads to Northwind Drive get stuck at 99%.", "Thanks for the details. Uploads that stop at 99% are usually blocked by antivirus or a proxy scanning the final chunk, so please try pausing it briefly or uploading from another network. If that doesn't help, send us the file size and the time of a failed attempt and we'll check the server logs."),
    ("who wants to return an unopened {hw}.", "Of course, unopened items can be returned within 30 days for a full refund. I've started a return for order {order} and you'll receive a prepaid {carrier} label by email shortly. Once the parcel is scanned at our warehouse, the refund of {amount} is issued within three business days."),
    ("whose workspace was suspended after a failed payment.", "I'm sorry for the disruption. Your workspace was paused because the payment for invoice {invoice} failed; your data is safe and nothing has been deleted. As soon as you update the card under Billing > Payment method, access is restored automatically, usually within a minute."),
    ("who asks whether their data is stored in the EU.", "Thanks for asking, it's a good question. Workspaces created with an EU billing address are stored in our Frankfurt and Amsterdam data centres and never leave the EU. You can see the region for your workspace under Settings > Data residency, and our data processing agreement is available on request."),
    ("who complains that support took a week to answer.", "You're right, a week is far too long to wait and I'm sorry. We had a backlog after the {month} release, but that's our problem, not yours. I've taken over your case personally and will stay on it until it's solved; you can reply to me directly on this thread."),
    ("whose Beacon Mesh Router loses Wi-Fi every evening.", "Thanks for the clear description. Evening drops are often caused by neighbouring networks on the same channel, so please open the Beacon app, go to Wi-Fi > Channel and switch from Auto to channel 1, 6 or 11. If the drops continue, enable diagnostics for 24 hours and send us the report."),
]
EXPLAIN = [
    ("Explain how to reset two-factor authentication for a Northwind Cloud account.", "If you can still sign in, go to Profile > Security, choose Two-factor authentication and click Reset; you'll scan a new QR code with your authenticator app. If you're locked out, sign in with a recovery code instead, or use the 'Lost your device?' link so support can verify your identity. After the reset, save the new recovery codes somewhere safe."),
    ("Explain how to update the payment card for a workspace.", "Only workspace owners and billing admins can change the card. Go to Billing > Payment method, click Replace card and enter the new details. The new card is used from the next invoice, and if a payment recently failed we retry it automatically within an hour."),
    ("Explain how to factory reset a Sync Hub S2.", "A factory reset erases all settings and data on the device, so back up anything important first. With the Sync Hub S2 powered on, press and hold the reset button on the back with a paper clip for 15 seconds until the light flashes blue. The device restarts, which takes about five minutes, and you can then set it up again in the Northwind app."),
    ("Explain how to restore an older version of a file in Northwind Drive.", "Open the folder in the web app, right-click the file and choose Version history. You'll see every saved version with the date and the person who changed it. Click Restore next to the one you want; the current version is kept in the history, so nothing is lost."),
    ("Explain how to transfer ownership of a workspace to another admin.", "The current owner opens Settings > Members, finds the new owner in the list and chooses Make owner. The new owner must already be an admin and has to accept by email within seven days. Billing details stay the same until the new owner changes them."),
    ("Explain how a customer starts a return for a hardware product.", "Hardware can be returned within 30 days of delivery. The customer opens Orders in their account, selects the order and clicks Start a return, choosing the reason from the list. We email a prepaid shipping label, and the refund is issued within three business days after the parcel reaches our warehouse."),
    ("Explain how to download all invoices for a year.", "Go to Billing > Invoices and set the date filter to the year you need. Click Download all to get a ZIP file with one PDF per invoice. Only owners and billing admins see this page."),
    ("Explain how to add a second access point to a Beacon Mesh Router network.", "Plug the new access point into power within a few metres of the main router. Open the Beacon app, tap Add device and follow the steps; the app finds the unit automatically and pairs it in about two minutes. Once it's paired, you can move it to its final spot, ideally halfway between the router and the area with weak signal."),
    ("Explain how an admin can require two-factor authentication for the whole team.", "Go to Settings > Security and switch on Require two-factor authentication. Members who haven't set it up are asked to do so the next time they sign in and can't open the workspace until they have. You can see who has completed it in the Members list."),
    ("Explain how to export all data before closing an account.", "Go to Settings > Data export and choose Full export. We prepare a ZIP archive with all files, folder structure and metadata and email a download link, which is valid for seven days. Large workspaces can take a few hours, so start the export before cancelling the plan."),
    ("Explain what a sync conflict copy is and how to avoid them.", "A conflict copy is created when the same file is changed in two places before either change has synced, so we keep both versions instead of losing one. To avoid them, make sure the desktop app is running and online before editing, and use the web editor for files that several people change at once. You can compare and merge the copies, then delete the one you don't need."),
    ("Explain the difference between the Team and Business plans.", "Both plans include shared folders, version history and the desktop and mobile apps. Business adds single sign-on, 365 days of version history instead of 90, audit logs and priority support. Team is usually enough for groups up to about 20 people without special compliance needs."),
    ("Explain how to set up single sign-on with Microsoft Entra ID.", "Single sign-on is available on the Business plan. In Entra ID, add Northwind Cloud from the app gallery and copy the metadata URL into Settings > Security > Single sign-on in your workspace. Assign the users or groups who need access in Entra ID, then test with one account before switching on Require SSO for everyone."),
    ("Explain how a customer can track a hardware order.", "Once an order ships, we send an email with the carrier and a tracking link. The same link is under Orders in the customer's account, next to the order number. Tracking usually starts showing movement within 24 hours of dispatch."),
    ("Explain how to undo an accidental plan upgrade.", "Go to Billing > Plan and choose the previous plan; the change takes effect immediately. If you downgrade within 48 hours of the upgrade, the extra charge is refunded automatically to the original payment method. After that, the difference is credited to your next invoice instead."),
]
SUMMARIES = [
    ("Summarise this ticket in one sentence for the escalation queue: \"Hi, I ordered a {hw} ({order}) two weeks ago, tracking stopped updating on {date}, and I need it before our office opens. I've emailed twice already.\"", "Customer's {hw} order {order} has had no tracking updates since {date}, is needed urgently for an office opening, and this is their third contact."),
    ("Summarise this ticket for the billing team: \"We were charged {amount} twice for {invoice}. Our bank confirms both payments went through. Please refund one and send a corrected statement.\"", "Duplicate payment of {amount} on invoice {invoice}, confirmed by the customer's bank; they want one payment refunded and a corrected statement."),
    ("Summarise this ticket in two sentences: \"Since the {version} update, {sw} crashes every time I open a shared folder on {os}. I've reinstalled twice. My whole team is affected and we have a deadline Friday.\"", "Since version {version}, {sw} crashes on {os} whenever a shared folder is opened, and reinstalling has not helped. The whole team is affected and has a deadline on Friday, so this is high priority."),
    ("Summarise this ticket for the security team: \"Got an alert about a login from {city} at 3am. Not me. I've changed my password but I'm worried someone downloaded our files.\"", "Customer reports an unrecognised sign-in from {city}, has already changed their password, and wants to know whether files were accessed; please review the activity log."),
    ("Summarise this ticket in one sentence: \"The {hw} I got yesterday has a rattling noise inside and won't turn on. Box was dented. Do I send it back or do you send a new one first?\"", "The {hw} arrived in a dented box, rattles and won't power on; the customer asks whether to return it first or receive an advance replacement."),
    ("Summarise this ticket for the account team: \"Our only admin, who set up the workspace, left the company last month. Nobody can add users or change billing. We're on the {plan} plan.\"", "The only admin of a {plan} workspace has left the company, so nobody can manage users or billing; the customer needs help regaining admin access."),
    ("Summarise this chat in one sentence: \"customer: my refund for {order} isn't here / agent: it was issued on {date} / customer: it's been {days} days, my bank sees nothing\"", "The refund for order {order} was issued on {date}, but after {days} days the customer's bank still shows nothing and they want it traced."),
    ("Summarise this ticket in one sentence: \"Hello, we would like to move from monthly to annual billing for our {seats} seats, but only if the {percent}% discount from your sales team still applies. Also please add PO {po} to invoices.\"", "Customer wants to switch {seats} seats to annual billing if the promised {percent}% discount applies and asks for PO {po} on future invoices."),
]
REWRITES = [
    ("Rewrite this reply so it sounds warmer and more professional: \"Your order is late because of the carrier. Nothing we can do. Wait a few more days.\"", "I'm sorry your order is taking longer than expected. The delay is with the carrier, and I've asked them for an updated delivery date. If it hasn't arrived within three business days, please reply and we'll send a replacement straight away."),
    ("Rewrite this reply in Northwind Cloud's tone: \"Password resets are in the FAQ. Please read it before contacting support.\"", "You can reset your password from the sign-in page by clicking 'Forgot password?', and we'll email you a link that's valid for one hour. If the email doesn't arrive within a few minutes, check your spam folder or reply here and we'll help you directly."),
    ("Make this reply shorter and clearer: \"We would like to inform you that after careful consideration of your request regarding the refund of your annual subscription, which you submitted to us on the aforementioned date, we have decided that we are able to approve it.\"", "Good news: your refund for the annual subscription has been approved. You'll see it on your original payment method within 5-10 business days."),
    ("Rewrite this reply so it doesn't blame the customer: \"You set up the router wrong, that's why the Wi-Fi keeps dropping.\"", "Thanks for your patience while we looked into this. The drops seem to come from the channel setting, which is easy to change: in the Beacon app, go to Wi-Fi > Channel and pick channel 1, 6 or 11. Let us know if the connection is still unstable afterwards and we'll dig deeper."),
    ("Rewrite this apology so it sounds sincere rather than scripted: \"We apologise for any inconvenience this may have caused.\"", "I'm really sorry this happened. Losing access in the middle of your work is frustrating, and it shouldn't have taken us this long to fix. Thank you for bearing with us."),
]
INTERNAL = [
    ("Write an internal note for the billing team about a customer who was double charged after a payment page timeout.", "The customer paid invoice {invoice} twice ({amount} each) after the payment page timed out and they retried. The payment provider shows both charges as captured. Please refund the second charge and add a note to the account so the customer isn't chased by the dunning emails."),
    ("Write a macro for customers asking whether the Sync Hub S2 works without an internet connection.", "Yes, the Sync Hub S2 keeps working on your local network without internet access. Devices at home or in the office can still reach shared folders and back up to it. Cloud sync and remote access resume automatically once the connection is back."),
    ("Write a short status page update for a partial outage affecting file uploads in Europe.", "We're investigating slower uploads and intermittent upload failures for some customers in Europe. Downloads, sharing and the desktop apps are not affected. We'll post an update within 30 minutes."),
    ("List three questions to ask a customer whose Beacon Mesh Router keeps dropping Wi-Fi.", "When do the drops happen, and do they affect all devices or only some? How many access points do you have, and how far apart are they? Which firmware version does the Beacon app show under Settings > About?"),
    ("Write a handover note for the next shift about an open ticket where a customer is locked out of their workspace.", "The customer lost their phone and can't pass two-factor authentication; recovery codes are missing. Identity was verified with billing details at 14:10, and a 2FA reset has been requested from the security team. Please confirm with the customer once the reset is done and remind them to save the new recovery codes."),
]
WEAK = [  # deliberately weak responses for reviewers to fix: (prompt, response, problem)
    ("Write a reply to a customer whose Sync Hub S2 won't power on after a firmware update.", "Try turning it off and on again.", "too_short"),
    ("Write a reply to a customer who was charged twice for the same invoice.", "Not our problem, ask your bank. We don't see anything wrong on our side so it's probably a mistake on your end.", "off_tone"),
    ("Explain how to reset two-factor authentication.", "Go to settings.", "too_short"),
    ("Write a reply to a customer asking for a refund on an annual plan after 45 days.", "lol no, refunds are only within 30 days, read the terms!!", "off_tone"),
    ("Summarise this ticket in one sentence: \"My Beacon Mesh Router drops the connection every evening around 8pm, all devices lose Wi-Fi for about ten minutes, then it comes back.\"", "The customer has a problem with the Sync Hub S2 not turning on and wants a refund.", "wrong_content"),
    ("Write a reply to a customer whose order is delayed.", "We are sorry for the inconvenience. We are sorry for the inconvenience. Your order will arrive when it arrives.", "repetitive_vague"),
]


# ---- Helpers -----------------------------------------------------------------------
SLOT_RE = re.compile(r"\{(\w+)\}")


def fill(template, rng, values):
    """Fill {slots}; values (shared across calls) keeps one value per slot name."""
    def sub(match):
        key = match.group(1)
        if key not in values:
            values[key] = SLOTS[key](rng, values)
        return values[key]
    return SLOT_RE.sub(sub, template)


def split_product(rng, template, label):
    """Strip a product marker such as "[hw] " and choose a matching product."""
    match = re.match(r"\[(\w+)\] ", template)
    if match:
        return rng.choice(MARKERS[match.group(1)]), template[match.end():]
    return rng.choice(PRODUCT_POOL[label]), template


def add_typo(text, rng):
    """Swap two adjacent inner letters of one longer word."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    j = rng.randint(1, len(w) - 3)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def compose(rng, core, label, channel, values, boost=0.0):
    """Wrap a filled core message in channel-typical openers, extra sentences and closers.

    E-mail and web-form greetings and sign-offs sit on their own lines; chat is one line.
    `boost` raises the chance of each decoration (used when a template is re-used)."""
    p_open, p_pre, p_extra, p_close = (min(1.0, p + boost) for p in CHANNEL_STYLE[channel])
    body = [fill(core, rng, values)]
    if rng.random() < p_pre:
        body.insert(0, fill(rng.choice(PREFACES), rng, values))
    if rng.random() < p_extra:
        pool = EXTRAS[label] if label and rng.random() < 0.6 else GENERIC_EXTRAS
        body.append(fill(rng.choice(pool), rng, values))
    text = " ".join(body)
    if rng.random() < 0.1:
        text = add_typo(text, rng)
    sep = " " if channel == "chat" else "\n"
    if rng.random() < p_open:
        if channel == "chat" and re.match(r"[A-Z][a-z]", text) and not re.match(r"I\b", text):
            text = text[0].lower() + text[1:]
        text = rng.choice(OPENERS[channel]) + sep + text
    if rng.random() < p_close:
        text += sep + fill(rng.choice(CLOSERS[channel]), rng, values)
    if channel == "chat" and rng.random() < 0.25:
        text = text.lower().rstrip(".")
    return text


def tokens(text):
    return set(re.findall(r"\w+", text.lower()))


def jaccard(a, b):
    return len(a & b) / len(a | b) if a | b else 1.0


def new_ticket(rng, kind, text, gold, product, channel=None):
    channel = channel or rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
    return {"kind": kind, "text": text, "gold": gold, "product": product, "channel": channel}


def make_templated(rng, kind, label, template, gold, seen):
    """A ticket from one template, retried until it isn't too close to earlier uses."""
    product, core = split_product(rng, template, label)
    channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
    earlier = seen.setdefault(template, [])
    best = None
    for attempt in range(40):
        text = compose(rng, core, label if len(gold) == 1 else None, channel, {"product": product}, attempt * 0.05)
        toks = tokens(text)
        score = max((jaccard(toks, other) for other in earlier), default=0.0)
        if best is None or score < best[0]:
            best = (score, text, toks)
        if score < 0.65:
            break
    earlier.append(best[2])
    return new_ticket(rng, kind, best[1], gold, product, channel)


# Tiny edits used to create planted near-duplicates.
def edit_greeting(text, rng):
    for opener in OPENERS["email"] + OPENERS["chat"]:
        for sep in ("\n", " "):
            if text.lower().startswith(opener.lower() + sep):
                return text[len(opener) + 1:]
    return "Hi,\n" + text


def edit_number(text, rng):
    digits = [i for m in re.finditer(r"\d{3,}", text) for i in range(m.start(), m.end())]
    if not digits:
        return edit_punctuation(text, rng)
    i = rng.choice(digits)
    return text[:i] + str((int(text[i]) + rng.randint(1, 8)) % 10) + text[i + 1:]


def edit_punctuation(text, rng):
    if text.endswith("."):
        return text[:-1] + rng.choice(["!", "", ".."])
    if text.endswith("?"):
        return text + "?"
    return text + "."


def edit_typo(text, rng):
    out = add_typo(text, rng)
    return out if out != text else edit_punctuation(text, rng)


def edit_whitespace(text, rng):
    gaps = [m.end() for m in re.finditer(r"[.,?!] ", text)]
    if not gaps:
        return text + " "
    i = rng.choice(gaps)
    return text[:i] + " " + text[i:]


EDITS = [edit_greeting, edit_number, edit_punctuation, edit_typo, edit_whitespace]


# ---- Building the ticket set -------------------------------------------------------
def build_tickets(rng):
    seen = {}
    bases = []       # standalone tickets, shuffled into a random order
    followers = []   # (ticket, base) re-sent shortly after their base
    # 25 ambiguous tickets from distinct templates; the rest seed conflicting near-dups.
    amb = list(AMBIGUOUS)
    rng.shuffle(amb)
    for a, b, tpl in amb[:25]:
        bases.append(make_templated(rng, "ambiguous", a, tpl, (a, b), seen))
    # 12 near-duplicate groups (8 pairs, 4 triples); 5 of them carry conflicting labels.
    sizes = [2, 3, 2, 2, 3, 2, 2, 3, 2, 2, 3, 2]
    conflicting = {0, 1, 4, 6, 9}
    spare_amb = amb[25:]
    clear_labels = [LABELS[i % 5] for i in range(7)]
    for g, size in enumerate(sizes):
        if g in conflicting:
            a, b, tpl = spare_amb.pop()
            base = make_templated(rng, "near_duplicate", a, tpl, (a, b), seen)
            base["gold"], other = (a,), (b,)
        else:
            label = clear_labels.pop()
            base = make_templated(rng, "near_duplicate", label, rng.choice(TEMPLATES[label]), (label,), seen)
            other = (label,)
        base["group"] = f"G{g + 1:02d}"
        base["conflict"] = g in conflicting
        bases.append(base)
        edits = rng.sample(EDITS, size - 1)
        for k, edit in enumerate(edits):
            src = base["text"] if k == 0 else followers[-1][0]["text"]
            text = edit(src, rng)
            assert text != src
            variant = dict(base, text=text, gold=other)
            followers.append((variant, base))
            if edit is edit_typo and size == 2:   # the re-sent copy fixes a typo instead
                base["text"], variant["text"] = variant["text"], base["text"]
    # Off-task and personal-data tickets.
    for kind, label, tpl, channel in OFF_TASK:
        text = fill(tpl, rng, {})
        bases.append(new_ticket(rng, "off_task", text, (label,) if label else (), rng.choice(HARDWARE + SOFTWARE), channel))
        bases[-1]["off_task"] = kind
    for label, tpl, channel, product in PII:
        bases.append(new_ticket(rng, "personal_data", fill(tpl, rng, {}), (label,), product, channel))
    # Regular clear tickets fill the rest; 3 of them are re-sent verbatim.
    n_regular = N_TICKETS - len(bases) - len(followers) - 3
    queues = {label: [] for label in LABELS}
    regular = []
    for i in range(n_regular):
        label = LABELS[i % 5]
        if not queues[label]:
            queues[label] = list(TEMPLATES[label])
            rng.shuffle(queues[label])
        regular.append(make_templated(rng, "regular", label, queues[label].pop(), (label,), seen))
    bases.extend(regular)
    for original in rng.sample(regular, 3):
        original["kind"] = "exact_duplicate"
        followers.append((dict(original, channel=rng.choice(CHANNELS)), original))
    rng.shuffle(bases)
    tickets = list(bases)
    for ticket, base in followers:
        after = max(i for i, t in enumerate(tickets) if t is base or t.get("follows_of") is base)
        ticket["follows_of"] = base
        tickets.insert(min(after + rng.randint(1, 4), len(tickets)), ticket)
    assert len(tickets) == N_TICKETS
    # Sequential ids and sorted dates, so ids grow with creation date.
    days = sorted(rng.randint(0, 182) for _ in tickets)
    for i, (ticket, day) in enumerate(zip(tickets, days)):
        d = date(2026, 4, 1) + timedelta(days=day)
        ticket["ticket_id"] = f"T-{i + 1:05d}"
        ticket["created_at"] = d.isoformat()
        ticket["source"] = SOURCES["chat" if ticket["channel"] == "chat" else ("q2" if d.month < 7 else "q3")]
    return tickets


# ---- Annotations -------------------------------------------------------------------
def build_labels(rng, tickets):
    by_kind = lambda kind: [t for t in tickets if t["kind"] == kind]
    chosen = by_kind("near_duplicate") + by_kind("exact_duplicate") + by_kind("personal_data")
    ambiguous = by_kind("ambiguous")
    off_task = by_kind("off_task")
    off_task = [t for t in off_task if t["off_task"] == "other_language"] + [
        next(t for t in off_task if t["off_task"] == kind) for kind in ("spam", "pleasantry")]
    chosen += ambiguous + off_task
    chosen += rng.sample(by_kind("regular"), 220 - len(chosen))
    triple_ids = {t["ticket_id"] for t in rng.sample(ambiguous, 15)}
    rest = [t for t in chosen if t["ticket_id"] not in triple_ids]
    triple_ids |= {t["ticket_id"] for t in rng.sample(rest, 45)}
    chosen.sort(key=lambda t: t["ticket_id"])
    assigned = [(t, rng.sample(list(ANNOTATORS), 3 if t["ticket_id"] in triple_ids else 2)) for t in chosen]
    rows = []
    for annotator, error_rate in ANNOTATORS.items():
        queue = [t for t, names in assigned if annotator in names]
        # Exact error counts (not coin flips) keep the agreement figures stable.
        clear = [t for t in queue if len(t["gold"]) == 1]
        wrong = {t["ticket_id"] for t in rng.sample(clear, round(error_rate * len(clear)))}
        ambiguous = [t for t in queue if len(t["gold"]) == 2]
        first = {t["ticket_id"] for t in rng.sample(ambiguous, round(AMBIGUOUS_FIRST[annotator] * len(ambiguous)))}
        for t in queue:
            gold, tid = t["gold"], t["ticket_id"]
            if not gold:                   # spam, thanks, test: anything goes
                label = rng.choice(LABELS)
            elif len(gold) == 2:           # ambiguous: one of the two plausible labels
                label = gold[0] if tid in first else gold[1]
            else:
                label = rng.choice(CONFUSION[gold[0]]) if tid in wrong else gold[0]
            when = datetime(2026, 10, 5, 8) + timedelta(days=rng.randint(0, 25), seconds=rng.randint(0, 10 * 3600))
            rows.append([tid, annotator, label, when.isoformat() + "Z"])
    rows.sort(key=lambda r: (r[0], r[3]))
    return rows


# ---- Instructions ------------------------------------------------------------------
def build_instructions(rng):
    items = []
    for prompt, response in EXPLAIN + REWRITES + INTERNAL:
        values = {}
        items.append((fill(prompt, rng, values), fill(response, rng, values), None))
    for prompt, response in SUMMARIES * 2:
        values = {}
        items.append((fill(prompt, rng, values), fill(response, rng, values), None))
    n_replies = 100 - len(items) - len(WEAK)
    for i in range(n_replies):
        tail, body = REPLIES[i % len(REPLIES)]
        values = {}
        prompt = fill(f"{rng.choice(REPLY_VERBS)} {{name}}, a customer {tail}", rng, values)
        parts = [rng.choice(GREETINGS).format(name=values["name"]), fill(body, rng, values)]
        if rng.random() < 0.8:
            parts.append(rng.choice(SIGNOFFS))
        items.append((prompt, "\n\n".join(parts), None))
    items += [(p, r, problem) for p, r, problem in WEAK]
    rng.shuffle(items)
    return [{"id": f"I-{i + 1:03d}", "prompt": p, "response": r, "source": "northwind-support-macros",
             "licence": LICENCE, "_weak": w} for i, (p, r, w) in enumerate(items)]


# ---- The lead's curation decisions -----------------------------------------------
# The demo's story ends in an approved version: a lead settled every dispute, excluded the re-sent
# copies (keeping the first ticket of each group), the off-task messages and the ones with personal
# data, built a candidate and approved it with nothing failing. curation/bootstrap.py replays these
# decisions after importing the tickets and labels. No random numbers: the other files stay the same.
OFF_TASK_NOTES = {"pleasantry": "thanks only, no request", "spam": "spam", "test": "a test message",
                  "other_language": "not in English; the labels are guesses"}


# What the lead found with the app's embedding pages (all-MiniLM-L6-v2), beyond the planted problems:
# near-duplicates at cosine >= 0.95 (two tickets from one template; the later one is excluded) and the
# items the Label issues page flagged (cleanlab), each checked against the guidelines.
EMBEDDING_NEAR_DUPLICATES = [("T-00005", "T-00323"), ("T-00010", "T-00217"), ("T-00065", "T-00368"),
                             ("T-00083", "T-00473"), ("T-00226", "T-00232"), ("T-00236", "T-00463"),
                             ("T-00421", "T-00456")]
LABEL_ISSUES_REVIEWED = ["T-00015", "T-00020", "T-00023", "T-00048", "T-00056", "T-00097", "T-00137",
                         "T-00268", "T-00276", "T-00332", "T-00414", "T-00419", "T-00445"]


def _disputed(labels):
    """The app's majority rule with k=2: a ticket is disputed when no label has more than half the votes."""
    counts = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return max(counts.values()) * 2 <= len(labels)


def build_decisions(tickets, rows):
    """Exclusions first (they leave the version and the adjudication queue), then one adjudication per
    ticket still disputed, with the label the guidelines give and the reason a lead writes."""
    by_id = {t["ticket_id"]: t for t in tickets}
    decisions = []
    for t in tickets:
        base = t.get("follows_of")
        if base is not None:
            decisions.append({"ticket_id": t["ticket_id"], "action": "exclude", "category": "duplicate",
                              "note": f"re-send of {base['ticket_id']}; the first ticket is kept"})
        elif t["kind"] == "off_task":
            decisions.append({"ticket_id": t["ticket_id"], "action": "exclude", "category": "off_task",
                              "note": OFF_TASK_NOTES.get(t["off_task"], t["off_task"])})
        elif t["kind"] == "personal_data":
            decisions.append({"ticket_id": t["ticket_id"], "action": "exclude", "category": "personal_data",
                              "note": "a private e-mail address, card digits, a phone number or a full name"})
    for kept, later in EMBEDDING_NEAR_DUPLICATES:
        decisions.append({"ticket_id": later, "action": "exclude", "category": "duplicate",
                          "note": f"near-duplicate of {kept} (cosine >= 0.95); the first ticket is kept"})
    excluded = {d["ticket_id"] for d in decisions}
    labels = {}
    for tid, _annotator, label, _when in rows:
        labels.setdefault(tid, []).append(label)
    for tid in sorted(labels):
        if tid in excluded or not _disputed(labels[tid]):
            continue
        gold = by_id[tid]["gold"]
        if len(gold) == 2:
            reason = (f"ambiguous between {gold[0]} and {gold[1]}: the guidelines label what the customer "
                      f"needs first, {gold[0]}")
        else:
            reason = f"the guidelines' definition of {gold[0]} fits the request"
        decisions.append({"ticket_id": tid, "action": "adjudicate", "label": gold[0], "reason": reason})
    settled = {d["ticket_id"] for d in decisions}
    for tid in LABEL_ISSUES_REVIEWED:
        if tid in settled:
            continue
        gold = by_id[tid]["gold"]
        decisions.append({"ticket_id": tid, "action": "adjudicate", "label": gold[0],
                          "reason": f"flagged as a likely label error; checked against the guidelines: {gold[0]}"})
    return decisions


# ---- Output and summary ------------------------------------------------------------
def write_jsonl(path, records, keys):
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps({k: rec[k] for k in keys}, ensure_ascii=False) + "\n")


def summarise(tickets, rows, instructions):
    out = lambda *a: print(*a, file=sys.stderr)
    out(f"tickets: {len(tickets)}  label rows: {len(rows)}  instructions: {len(instructions)}")
    gold = {t["ticket_id"]: t["gold"] for t in tickets}
    counts = {label: sum(1 for t in tickets if t["gold"][:1] == (label,)) for label in LABELS}
    out("template label share (first plausible label):",
        ", ".join(f"{k} {v} ({v / len(tickets):.0%})" for k, v in counts.items()))
    ann = {label: sum(1 for r in rows if r[2] == label) for label in LABELS}
    out("annotation label share:", ", ".join(f"{k} {v} ({v / len(rows):.0%})" for k, v in ann.items()))
    per_ticket = {}
    for tid, annotator, label, _ in rows:
        per_ticket.setdefault(tid, {})[annotator] = label
    sizes = [len(v) for v in per_ticket.values()]
    out(f"labelled tickets: {len(per_ticket)} (2 annotators: {sizes.count(2)}, 3 annotators: {sizes.count(3)})")
    names = list(ANNOTATORS)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            stats = {"all": [0, 0], "clear": [0, 0], "ambiguous": [0, 0], "off_task": [0, 0]}
            for tid, labs in per_ticket.items():
                if a in labs and b in labs:
                    subset = {0: "off_task", 1: "clear", 2: "ambiguous"}[len(gold[tid])]
                    for key in ("all", subset):
                        stats[key][0] += labs[a] == labs[b]
                        stats[key][1] += 1
            out(f"agreement {a} / {b}: " + ", ".join(f"{k} {s[0] / s[1]:.1%} (n={s[1]})" for k, s in stats.items() if s[1]))
    for a in names:
        clear = [(labs[a], gold[tid][0]) for tid, labs in per_ticket.items() if a in labs and len(gold[tid]) == 1]
        out(f"{a}: {sum(1 for _ in clear)} clear labels, {sum(x == y for x, y in clear) / len(clear):.1%} match the template label")
    for kind in ("ambiguous", "near_duplicate", "exact_duplicate", "off_task", "personal_data"):
        ids = [t["ticket_id"] for t in tickets if t["kind"] == kind]
        out(f"{kind}: {' '.join(ids)}")
    groups = {}
    for t in tickets:
        base = t.get("follows_of") or t
        if "group" in base:
            groups.setdefault(base["group"], []).append(f"{t['ticket_id']}:{t['gold'][0]}")
    for g in sorted(groups):
        out(f"  {g}{' (conflicting)' if [t for t in tickets if t.get('group') == g][0]['conflict'] else ''}: {' '.join(groups[g])}")
    out("weak responses:", " ".join(f"{i['id']}({i['_weak']})" for i in instructions if i["_weak"]))
    # Unplanned close pairs (should be none or very few).
    toks = [(t, tokens(t["text"])) for t in tickets]
    planted = lambda t: (t.get("follows_of") or t)["ticket_id"]
    close = sum(1 for i, (t1, s1) in enumerate(toks) for t2, s2 in toks[i + 1:]
                if planted(t1) != planted(t2) and jaccard(s1, s2) >= 0.7)
    out(f"unplanned ticket pairs with token Jaccard >= 0.7: {close}")


def main():
    rng = random.Random(SEED)
    tickets = build_tickets(rng)
    for t in tickets:
        t["licence"] = LICENCE
    write_jsonl(OUT_DIR / "support_tickets.jsonl", tickets,
                ["ticket_id", "text", "channel", "product", "created_at", "source", "licence"])
    rows = build_labels(rng, tickets)
    with open(OUT_DIR / "support_ticket_labels.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["ticket_id", "annotator", "label", "labelled_at"])
        writer.writerows(rows)
    instructions = build_instructions(rng)
    # One sequence of ids over all 100 pairs; the weak drafts go to their own file, so the app can import
    # the published macros as final and the drafts for review (issue 17: reviewed means reviewed).
    fields = ["id", "prompt", "response", "source", "licence"]
    write_jsonl(OUT_DIR / "instructions.jsonl", [i for i in instructions if not i["_weak"]], fields)
    write_jsonl(OUT_DIR / "instruction_drafts.jsonl", [i for i in instructions if i["_weak"]], fields)
    decisions = build_decisions(tickets, rows)
    with open(OUT_DIR / "curation_decisions.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for decision in decisions:
            fh.write(json.dumps(decision, ensure_ascii=False) + "\n")
    summarise(tickets, rows, instructions)
    print(f"curation decisions: {sum(d['action'] == 'exclude' for d in decisions)} exclusions, "
          f"{sum(d['action'] == 'adjudicate' for d in decisions)} adjudications", file=sys.stderr)


if __name__ == "__main__":
    main()
