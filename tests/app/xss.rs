//! The XSS sweep (DESIGN.md §4 "Output"): a corpus of injection payloads is stored through the
//! real forms in every text field of the profile, the CV (title, basics, one entry of every
//! section) and the admin forms, sent as every reflected input (query parameters, path
//! parameters, the 422 and 409 re-render of each form), and every GET route of [`ROUTES`] is
//! rendered as the owner and as a superuser. Every `text/html` answer is checked:
//!
//! - no payload appears raw (the marker inside it is found, and the text around it is the
//!   payload exactly as typed);
//! - no markup comes from user data: no `<script>` but the app's own `<script src="/static/…">`,
//!   no `<style>`, `<iframe>`, `<object>`, `<embed>`, `<base>` or `<meta http-equiv>`, no
//!   `on…` attribute, no attribute whose name is not a plain name (a quote broke out);
//! - no `href`/`src`/`action`… is a `javascript:`, `vbscript:` or `data:` URL, and no link from
//!   user data is anything but `http(s)://` or a local path;
//! - template syntax typed by a user is shown, never evaluated;
//! - a redirect only ever goes to a local path.
//!
//! Non-HTML answers (JSON, CSV, pictures, archives, assets) must not be `text/html`.
//!
//! Every payload carries a marker, `xss` + a three-digit place number + a two-digit payload
//! number, naming the field it went into, so every finding names its field and payload; all
//! findings are reported together. The fields come from the domain's tables (`BASICS_FIELDS`,
//! `Section::fields()`) and from the forms the pages show (profile, registration, login, new
//! user), and the query parameters from the links and GET forms of the pages themselves, so a
//! new field or filter is swept without editing this file; a new POST route must be named here
//! as swept or as taking no text.
//!
//! Each round stores the next payloads in every field, as many side by side as the field's
//! rules allow (checked with the domain's own validation), in a new CV each round so that no
//! aggregate grows long, and renders every page; rounds go on until every field has held every
//! payload. Refused and reflected input needs no storing, so it is sent once, with the whole
//! corpus in every field.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::Cursor;
use std::time::Instant;

use axum::http::{header, StatusCode};
use cvm::http::routes::{Access, ROUTES};
use domain::cv::LOCATION_FIELDS;
use domain::{
    parse_basics, parse_entry, CvTitle, FieldKind, Profile, ProfileInput, Section, BASICS_FIELDS,
    TEXT_MAX,
};

use crate::helpers::{Browser, TestApp, TestResponse, GOOD_PASSWORD};

// ---------------------------------------------------------------------------------------------
// The corpus.
// ---------------------------------------------------------------------------------------------

/// One injection payload. `{m}` stands for the marker that names where it went.
struct Payload {
    name: &'static str,
    /// As typed into a text field.
    text: &'static str,
    /// A valid `http(s)://` URL carrying the same idea, for URL fields (which refuse `text`).
    url: &'static str,
}

const PAYLOADS: &[Payload] = &[
    Payload {
        name: "script tag",
        text: "<script>alert('{m}')</script>",
        url: "https://example.com/{m}?q='-alert(1)-'",
    },
    Payload {
        name: "img onerror",
        text: "<img src=x onerror=alert('{m}')>",
        url: "https://example.com/{m}/'/onerror='alert(1)",
    },
    Payload {
        name: "svg onload",
        text: "<svg/onload=alert('{m}')>",
        url: "https://example.com/{m}?s=&lt;svg/onload=alert(1)&gt;",
    },
    Payload {
        name: "double-quote attribute breakout",
        text: "\" autofocus onfocus=\"alert('{m}')\" x=\"",
        url: "https://example.com/{m}?a=&quot;autofocus/onfocus=alert(1)",
    },
    Payload {
        name: "single-quote attribute breakout",
        text: "' autofocus onfocus='alert(\"{m}\")' x='",
        url: "https://example.com/{m}?a='autofocus/onfocus='alert(1)",
    },
    Payload {
        name: "tag breakout",
        text: "'\"><img src=x onerror=alert('{m}')>",
        url: "https://example.com/{m}#'%22%3E%3Cimg%20src=x%3E",
    },
    Payload {
        name: "textarea breakout",
        text: "</textarea><script>alert('{m}')</script>",
        url: "https://example.com/{m}?%3C/textarea%3E",
    },
    Payload {
        name: "title breakout",
        text: "</title><script>alert('{m}')</script>",
        url: "https://example.com/{m}?%3C/title%3E",
    },
    Payload {
        name: "script-block breakout",
        text: "</script><script>alert('{m}')</script><!--",
        url: "https://example.com/{m}?'};alert(1);//",
    },
    Payload {
        name: "javascript: URL",
        text: "javascript:alert('{m}')",
        url: "https://example.com/{m}#javascript:alert(1)",
    },
    Payload {
        name: "entity-obfuscated javascript: URL",
        text: "jav&#x09;ascript&colon;alert('{m}')",
        url: "https://javascript:alert(1)@example.com/{m}",
    },
    Payload {
        name: "data: URL",
        text: "data:text/html;base64,PHN2Zz4=#{m}",
        url: "https://example.com/{m}?u=data:text/html,alert(1)",
    },
    Payload {
        name: "http URL with quotes",
        text: "https://example.com/{m}\"onmouseover=\"alert(1)",
        url: "https://example.com/{m}'onmouseover='alert(1)",
    },
    Payload {
        name: "http URL with angle brackets",
        text: "https://example.com/{m}/<script>alert(1)</script>",
        url: "https://example.com/{m}/%3Cscript%3Ealert(1)%3C/script%3E",
    },
    Payload {
        name: "template syntax",
        text: "{{ 6*7 }}{% if true %}@T{% endif %}{# c #}{m}",
        url: "https://example.com/{m}?{{6*7}}{%if%20true%}@T{%endif%}",
    },
    Payload {
        name: "unicode line separators",
        text: "line\u{2028}separator\u{2029}<b>{m}</b>",
        url: "https://example.com/{m}?%E2%80%A8%E2%80%A9",
    },
    Payload {
        name: "pre-encoded entities",
        text: "&lt;script&gt;alert('{m}')&lt;/script&gt;&amp;",
        url: "https://example.com/{m}?a=1&amp;b=&lt;x&gt;",
    },
    Payload {
        name: "javascript: link markup",
        text: "<a href=\"javascript:alert('{m}')\">click</a>",
        url: "https://example.com/{m}?href=javascript:alert(1)",
    },
    Payload {
        name: "style block",
        text: "<style>@import'//evil.example/{m}.css';</style>",
        url: "https://example.com/{m}.css?'@import",
    },
];

/// The payloads that are URLs a URL field must refuse (script, data, and http URLs that break
/// out of an attribute).
fn is_url_attack(payload: &Payload) -> bool {
    ["javascript:", "jav&", "data:", "https:"]
        .iter()
        .any(|prefix| payload.text.starts_with(prefix))
}

/// What the template payload becomes if user data is ever rendered as a template.
const EVALUATED_TEMPLATE: &str = "42@T";

/// What a field accepts, which decides the value it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    LongText,
    List,
    Email,
    Url,
    /// `YYYY-MM` and the like: no room for a payload (it gets one only in the 422 pass).
    Date,
    /// Digits, spaces and `+ ( ) -`: no room for a payload either.
    Phone,
    /// A select or a hidden input.
    Choice,
    Password,
}

impl Kind {
    fn of(kind: FieldKind) -> Self {
        match kind {
            FieldKind::Text => Kind::Text,
            FieldKind::LongText => Kind::LongText,
            FieldKind::List => Kind::List,
            FieldKind::Email => Kind::Email,
            FieldKind::Url => Kind::Url,
            FieldKind::Date => Kind::Date,
        }
    }

    /// From a form control: the `input`'s `type`, or the element's name.
    fn of_control(control: &str) -> Self {
        match control {
            "textarea" => Kind::LongText,
            "email" => Kind::Email,
            "url" => Kind::Url,
            "tel" => Kind::Phone,
            "password" => Kind::Password,
            "select" | "hidden" => Kind::Choice,
            _ => Kind::Text,
        }
    }

    fn holds_text(self) -> bool {
        matches!(
            self,
            Kind::Text | Kind::LongText | Kind::List | Kind::Email | Kind::Url
        )
    }
}

/// A valid value for a field that cannot hold a payload.
fn neutral_value(kind: Kind) -> String {
    match kind {
        Kind::Date => "2019-09".to_owned(),
        Kind::Phone => "+1 555 0100".to_owned(),
        Kind::Password => GOOD_PASSWORD.to_owned(),
        _ => String::new(),
    }
}

/// A payload planted somewhere, found again by its marker.
struct Planted {
    place: String,
    payload: &'static str,
    /// The value as the server keeps it (trimmed; for a list, its first item).
    raw: String,
    /// Stored through a form that answered 303, so some page must show it.
    stored: bool,
}

/// The sweep's findings and bookkeeping.
#[derive(Default)]
struct Sweep {
    places: Vec<String>,
    planted: HashMap<String, Planted>,
    /// Markers seen on some HTML page.
    seen: HashSet<String>,
    /// Finding → the requests it was seen in.
    findings: BTreeMap<String, Vec<String>>,
    pages: usize,
    non_html: usize,
    /// Query parameter names the app's own links and GET forms use, by the path they go to.
    query_names: BTreeMap<String, BTreeSet<String>>,
    /// Places that cannot hold a payload.
    neutral: BTreeSet<String>,
    /// The payloads each place is still to get, in turn.
    queue: HashMap<String, VecDeque<usize>>,
    /// The payloads each place of stored data has held.
    covered: BTreeMap<String, BTreeSet<usize>>,
}

impl Sweep {
    fn marker(&mut self, place: &str, payload: usize) -> String {
        let index = match self.places.iter().position(|p| p == place) {
            Some(index) => index,
            None => {
                self.places.push(place.to_owned());
                self.places.len() - 1
            }
        };
        assert!(index < 1000 && payload < 100, "marker space exhausted");
        format!("xss{index:03}{payload:02}")
    }

    fn plant(&mut self, marker: String, place: &str, payload: usize, raw: String, stored: bool) {
        let planted = Planted {
            place: place.to_owned(),
            payload: PAYLOADS[payload].name,
            raw: raw.trim().to_owned(),
            stored,
        };
        self.planted.insert(marker, planted);
    }

    /// The next payloads for a `kind` field at `place`, as many as `fits` accepts together (at
    /// least one), in the form the field accepts: joined by spaces, one per line in a list,
    /// their URL variants back to back in a URL field, an address made of them in an email
    /// field. A field that holds no text gets a valid neutral value instead.
    fn pack(
        &mut self,
        place: &str,
        kind: Kind,
        stored: bool,
        fits: &dyn Fn(&str) -> bool,
    ) -> String {
        if !kind.holds_text() {
            self.neutral.insert(format!("{place} ({kind:?})"));
            return neutral_value(kind);
        }
        let all = || (0..PAYLOADS.len()).collect::<VecDeque<_>>();
        let mut chosen = Vec::new();
        loop {
            let queue = self.queue.entry(place.to_owned()).or_insert_with(all);
            if queue.is_empty() {
                if !chosen.is_empty() {
                    break;
                }
                *queue = all();
            }
            let next = queue[0];
            let mut candidate = chosen.clone();
            candidate.push(next);
            if !chosen.is_empty() && !fits(&self.compose(place, kind, &candidate).0) {
                break;
            }
            self.queue.get_mut(place).unwrap().pop_front();
            chosen = candidate;
        }
        let (value, raws) = self.compose(place, kind, &chosen);
        for (&payload, raw) in chosen.iter().zip(raws) {
            let marker = self.marker(place, payload);
            self.plant(marker, place, payload, raw, stored);
            if stored {
                self.covered
                    .entry(place.to_owned())
                    .or_default()
                    .insert(payload);
            }
        }
        value
    }

    /// The next payload `place` has not held, counted as held.
    fn take(&mut self, place: &str) -> Option<usize> {
        let queue = self
            .queue
            .entry(place.to_owned())
            .or_insert_with(|| (0..PAYLOADS.len()).collect());
        let payload = queue.pop_front()?;
        self.covered
            .entry(place.to_owned())
            .or_default()
            .insert(payload);
        Some(payload)
    }

    /// The value of a `kind` field holding `payloads`, and each payload's raw text in it.
    fn compose(&mut self, place: &str, kind: Kind, payloads: &[usize]) -> (String, Vec<String>) {
        let raws: Vec<String> = payloads
            .iter()
            .map(|&payload| {
                let marker = self.marker(place, payload);
                let corpus = &PAYLOADS[payload];
                match kind {
                    Kind::Url => corpus.url.replace("{m}", &marker),
                    Kind::Email => without_whitespace(&corpus.text.replace("{m}", &marker)),
                    _ => corpus.text.replace("{m}", &marker),
                }
            })
            .collect();
        let value = match kind {
            Kind::Url => raws.concat(),
            Kind::Email => format!("{}@example.com", raws.join("/")),
            Kind::List => raws.join("\n"),
            _ => raws.join(" "),
        };
        (value, raws)
    }

    /// Whether some place of stored data has not held every payload yet.
    fn pending(&self) -> bool {
        self.covered
            .values()
            .any(|held| held.len() < PAYLOADS.len())
    }

    /// One payload's text as typed, for input that is refused or only reflected.
    fn text(&mut self, place: &str, payload: usize) -> String {
        let marker = self.marker(place, payload);
        let text = PAYLOADS[payload].text.replace("{m}", &marker);
        self.plant(marker, place, payload, text.clone(), false);
        text
    }

    /// The whole corpus, one payload after another, for input that is refused or reflected.
    fn corpus(&mut self, place: &str) -> String {
        (0..PAYLOADS.len())
            .map(|payload| self.text(place, payload))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn find(&mut self, finding: String, request: &str) {
        self.findings
            .entry(finding)
            .or_default()
            .push(request.to_owned());
    }

    /// Where the first marker in `text` says the data came from.
    fn origin(&self, text: &str) -> String {
        match markers(text).next() {
            Some((_, marker)) => match self.planted.get(marker) {
                Some(planted) => format!("{} («{}»)", planted.place, planted.payload),
                None => format!("unknown marker {marker}"),
            },
            None => "no marker: the app's own markup?".to_owned(),
        }
    }

    /// A form's answer must have this status; otherwise that is a finding too.
    fn expect(&mut self, what: &str, response: &TestResponse, status: StatusCode) {
        if response.status != status {
            let start = response.body.find("<main").unwrap_or(0);
            let body: String = response.body[start..].chars().take(400).collect();
            let finding = format!(
                "{what}: expected {status}, got {}: {body:?}",
                response.status
            );
            self.find(finding, what);
        }
    }

    /// Checks one answer; `who` and `request` name it in findings. Returns whether the answer
    /// showed any marker.
    fn check(&mut self, who: &str, request: &str, response: &TestResponse) -> bool {
        let request = format!("{who}: {request} → {}", response.status.as_u16());
        if response.status.is_server_error() {
            self.find("a server error".into(), &request);
        }
        if response.status.is_redirection() {
            let location = response.location();
            if !location.starts_with('/') || location.starts_with("//") || location.contains('\\') {
                let finding = format!(
                    "a redirect to {location:?}, not a local path ({})",
                    self.origin(location)
                );
                self.find(finding, &request);
            }
        }
        let content_type = response
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("text/html") {
            self.pages += 1;
            self.check_html(&response.body, &request)
        } else {
            if !response.bytes.is_empty() {
                self.non_html += 1;
            }
            markers(&response.body).next().is_some()
        }
    }

    fn check_html(&mut self, html: &str, request: &str) -> bool {
        let mut findings = Vec::new();
        let mut any = false;
        // Raw payloads, found by their markers.
        for (at, marker) in markers(html) {
            any = true;
            if !self.seen.contains(marker) {
                self.seen.insert(marker.to_owned());
            }
            let Some(planted) = self.planted.get(marker) else {
                continue;
            };
            if !planted.raw.contains(['<', '>', '"', '\'', '&']) {
                continue;
            }
            let offset = planted
                .raw
                .find(marker)
                .expect("the marker is in its payload");
            let unescaped = at
                .checked_sub(offset)
                .and_then(|start| html.get(start..start + planted.raw.len()))
                .is_some_and(|text| text == planted.raw);
            if unescaped {
                findings.push(format!(
                    "{}: payload «{}» appears unescaped: {:?}",
                    planted.place, planted.payload, planted.raw
                ));
            }
        }
        // Template syntax evaluated.
        for (at, _) in html.match_indices(EVALUATED_TEMPLATE) {
            let after = &html[at..html.len().min(at + 120)];
            findings.push(format!(
                "template syntax was evaluated: {}",
                self.origin(after)
            ));
        }
        // Markup from data, and the query parameters the app's own links and forms use.
        let mut get_form: Option<String> = None;
        for tag in tags(html) {
            for problem in tag_problems(&tag) {
                // A <script> or <style> from data has its marker in its content.
                let text = match tag.content {
                    Some(content) if markers(tag.text).next().is_none() => {
                        let end = content.len().min(200);
                        let end = (0..=end).rev().find(|&i| content.is_char_boundary(i));
                        format!("{}{}", tag.text, &content[..end.unwrap_or(0)])
                    }
                    _ => tag.text.to_owned(),
                };
                findings.push(format!(
                    "{problem}: {} in {}",
                    self.origin(&text),
                    snippet(&text)
                ));
            }
            self.learn_query_names(&tag, &mut get_form);
        }
        for finding in findings {
            self.find(finding, request);
        }
        any
    }

    fn learn_query_names(&mut self, tag: &Tag<'_>, get_form: &mut Option<String>) {
        let mut link = tag.attr("href").or(tag.attr("src"));
        if tag.is("form") {
            *get_form = None;
            if !tag
                .attr("method")
                .is_some_and(|m| m.eq_ignore_ascii_case("post"))
            {
                let action = tag.attr("action").map(decode_entities).unwrap_or_default();
                *get_form = Some(action.split('?').next().unwrap_or("").to_owned());
                link = tag.attr("action");
            }
        } else if tag.end && tag.is("form") {
            *get_form = None;
        } else if tag.is("input") || tag.is("select") || tag.is("textarea") {
            if let (Some(target), Some(name)) = (get_form.as_ref(), tag.attr("name")) {
                self.query_names
                    .entry(target.clone())
                    .or_default()
                    .insert(decode_entities(name));
            }
        }
        let Some(link) = link.map(decode_entities) else {
            return;
        };
        if !link.starts_with('/') || link.starts_with("//") {
            return;
        }
        let Some((target, query)) = link.split_once('?') else {
            return;
        };
        let query = query.split('#').next().unwrap_or("");
        for pair in query.split('&') {
            let name = pair.split('=').next().unwrap_or("");
            if !name.is_empty() && name != "csrf_token" && markers(name).next().is_none() {
                self.query_names
                    .entry(target.to_owned())
                    .or_default()
                    .insert(name.to_owned());
            }
        }
    }
}

fn without_whitespace(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_whitespace() { '/' } else { c })
        .collect()
}

fn snippet(text: &str) -> String {
    let short: String = text.chars().take(140).collect();
    if short.len() < text.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// Every marker (`xss` + five digits) in `text`, with its byte offset.
fn markers(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.match_indices("xss").filter_map(move |(at, _)| {
        let candidate = text.get(at..at + 8)?;
        let digits = &candidate.as_bytes()[3..];
        let next = text.as_bytes().get(at + 8);
        (digits.iter().all(u8::is_ascii_digit) && !next.is_some_and(u8::is_ascii_digit))
            .then_some((at, candidate))
    })
}

// ---------------------------------------------------------------------------------------------
// A small HTML tokenizer: tags and their attributes, split the way a browser splits them.
// ---------------------------------------------------------------------------------------------

struct Tag<'a> {
    name: &'a str,
    end: bool,
    attrs: Vec<(&'a str, Option<&'a str>)>,
    /// The tag's source text.
    text: &'a str,
    /// For `script`, `style`, `textarea` and `title`: the text up to their end tag, which is all
    /// a browser reads as their content.
    content: Option<&'a str>,
}

impl<'a> Tag<'a> {
    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    fn attr(&self, name: &str) -> Option<&'a str> {
        self.attrs
            .iter()
            .find(|(attr, _)| attr.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| *value)
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// The first `</name` (any case) in `html` from `from`.
fn find_end_tag(html: &str, from: usize, name: &str) -> usize {
    let bytes = html.as_bytes();
    let mut at = from;
    while let Some(offset) = html[at..].find("</") {
        let start = at + offset + 2;
        if bytes
            .get(start..start + name.len())
            .is_some_and(|candidate| candidate.eq_ignore_ascii_case(name.as_bytes()))
        {
            return at + offset;
        }
        at = start;
    }
    html.len()
}

fn tags(html: &str) -> Vec<Tag<'_>> {
    let bytes = html.as_bytes();
    let len = bytes.len();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(offset) = html[i..].find('<') {
        let start = i + offset;
        let rest = &html[start + 1..];
        if rest.starts_with("!--") {
            i = html[start..].find("-->").map_or(len, |end| start + end + 3);
            continue;
        }
        if rest.starts_with('!') || rest.starts_with('?') {
            i = html[start..].find('>').map_or(len, |end| start + end + 1);
            continue;
        }
        let end = rest.starts_with('/');
        let name_start = start + 1 + usize::from(end);
        if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            i = start + 1;
            continue;
        }
        let mut k = name_start;
        while k < len && !is_space(bytes[k]) && bytes[k] != b'/' && bytes[k] != b'>' {
            k += 1;
        }
        let name = &html[name_start..k];
        if end {
            let close = html[k..].find('>').map_or(len, |e| k + e + 1);
            out.push(Tag {
                name,
                end,
                attrs: Vec::new(),
                text: &html[start..close],
                content: None,
            });
            i = close;
            continue;
        }
        let mut attrs = Vec::new();
        loop {
            while k < len && (is_space(bytes[k]) || bytes[k] == b'/') {
                k += 1;
            }
            if k >= len {
                break;
            }
            if bytes[k] == b'>' {
                k += 1;
                break;
            }
            let attr_start = k;
            k += 1;
            while k < len && !is_space(bytes[k]) && !matches!(bytes[k], b'/' | b'>' | b'=') {
                k += 1;
            }
            let attr = &html[attr_start..k];
            let mut v = k;
            while v < len && is_space(bytes[v]) {
                v += 1;
            }
            if v < len && bytes[v] == b'=' {
                v += 1;
                while v < len && is_space(bytes[v]) {
                    v += 1;
                }
                if v < len && (bytes[v] == b'"' || bytes[v] == b'\'') {
                    let quote = bytes[v] as char;
                    let close = html[v + 1..].find(quote).map_or(len, |e| v + 1 + e);
                    attrs.push((attr, Some(&html[v + 1..close])));
                    k = (close + 1).min(len);
                } else {
                    let mut close = v;
                    while close < len && !is_space(bytes[close]) && bytes[close] != b'>' {
                        close += 1;
                    }
                    attrs.push((attr, Some(&html[v..close])));
                    k = close;
                }
            } else {
                attrs.push((attr, None));
            }
        }
        let text = &html[start..k];
        let mut content = None;
        if ["script", "style", "textarea", "title"]
            .iter()
            .any(|raw_text| name.eq_ignore_ascii_case(raw_text))
        {
            let close = find_end_tag(html, k, name);
            content = Some(&html[k..close]);
            k = close;
        }
        out.push(Tag {
            name,
            end,
            attrs,
            text,
            content,
        });
        i = k;
    }
    out
}

/// Attributes whose value is a URL a browser follows or loads.
const URL_ATTRIBUTES: [&str; 11] = [
    "href",
    "src",
    "action",
    "formaction",
    "xlink:href",
    "poster",
    "srcset",
    "background",
    "cite",
    "data",
    "ping",
];

/// Elements the app never writes (its CSP forbids inline style too) and data must not create.
const FOREIGN_ELEMENTS: [&str; 8] = [
    "style", "iframe", "frame", "frameset", "object", "embed", "base", "applet",
];

fn tag_problems(tag: &Tag<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    if tag.end {
        return problems;
    }
    for (attr, value) in &tag.attrs {
        let plain = attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
        if !plain {
            problems.push(format!("an attribute named {attr:?} (a quote broke out)"));
        } else if attr.len() > 2 && attr[..2].eq_ignore_ascii_case("on") {
            problems.push(format!("an event-handler attribute `{attr}`"));
        }
        let Some(value) = value else {
            continue;
        };
        if !URL_ATTRIBUTES
            .iter()
            .any(|name| attr.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let url: String = decode_entities(value)
            .chars()
            .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
            .collect::<String>()
            .to_ascii_lowercase();
        if ["javascript:", "vbscript:", "data:"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            problems.push(format!("a `{attr}` with a script or data URL"));
        } else if markers(value).next().is_some()
            && !(url.starts_with("http://")
                || url.starts_with("https://")
                || (url.starts_with('/') && !url.starts_with("//"))
                || url.starts_with('?')
                || url.starts_with('#'))
        {
            problems.push(format!(
                "a `{attr}` from user data that is neither http(s) nor local"
            ));
        }
    }
    if tag.is("script") {
        let own = tag
            .attr("src")
            .is_some_and(|src| src.starts_with("/static/"))
            && tag.content.is_some_and(|content| content.trim().is_empty());
        if !own {
            problems.push("a <script> that is not the app's own /static/ script".into());
        }
    } else if tag.is("meta") && tag.attr("http-equiv").is_some() {
        problems.push("a <meta http-equiv>".into());
    } else if tag.is("link")
        && !tag
            .attr("href")
            .is_some_and(|href| href.starts_with("/static/"))
    {
        problems.push("a <link> to something other than /static/".into());
    } else if let Some(name) = FOREIGN_ELEMENTS.iter().find(|name| tag.is(name)) {
        problems.push(format!("a <{name}> element"));
    }
    problems
}

/// `text` with character references decoded (numeric ones, and the few named ones a URL attack
/// needs).
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| {
                let entity = rest[1..1 + end].to_ascii_lowercase();
                let c = match entity.as_str() {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "colon" => Some(':'),
                    "tab" => Some('\t'),
                    "newline" => Some('\n'),
                    other => other
                        .strip_prefix("#x")
                        .map(|hex| u32::from_str_radix(hex, 16))
                        .or_else(|| other.strip_prefix('#').map(str::parse::<u32>))
                        .and_then(Result::ok)
                        .and_then(char::from_u32),
                };
                c.map(|c| (c, end + 2))
            });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Percent-encodes everything but unreserved characters (for paths and query strings).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[test]
fn the_tag_scanner_finds_what_a_browser_would_run() {
    let problems =
        |html: &str| -> Vec<String> { tags(html).iter().flat_map(tag_problems).collect() };
    // What the app writes is clean…
    assert_eq!(
        problems(
            "<!doctype html><title>a &lt;b&gt;</title><script src=\"/static/app.js\" defer>\
             </script><a href=\"/cvs?q=xss00101\">x</a><input value=\"&quot; onfocus=&quot;x\">\
             <textarea>&lt;/textarea&gt;</textarea><svg role=\"img\"><path d=\"M0 0\"/></svg>"
        ),
        Vec::<String>::new()
    );
    // …and each way out is seen.
    for html in [
        "<input value=\"\" onfocus=\"alert(1)\">",
        "<input value='' x='' \"><img src=x onerror=alert(1)>'>",
        "<title></title><script>alert(1)</script></title>",
        "<textarea></TEXTAREA><script>alert(1)</script></textarea>",
        "<svg/onload=alert(1)>",
        "<a href=\" JaVa&#x09;script&colon;alert(1)\">x</a>",
        "<a href=\"data:text/html,x\">x</a>",
        "<a href=\"xss00101\">x</a>",
        "<style>@import'x'</style>",
        "<script src=\"https://evil.example/x.js\"></script>",
        "<SCRIPT src=\"/static/app.js\">alert(1)</SCRIPT>",
    ] {
        assert!(!problems(html).is_empty(), "{html}");
    }
    assert_eq!(
        markers("xss00101 xss001011 axss12345").collect::<Vec<_>>(),
        [(0, "xss00101"), (20, "xss12345")]
    );
}

// ---------------------------------------------------------------------------------------------
// The site under attack.
// ---------------------------------------------------------------------------------------------

/// The fields of the form whose action is `action` on `html`, as (name, control), without the
/// CSRF token, file inputs and buttons.
fn form_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut inside = false;
    for tag in tags(html) {
        if tag.is("form") {
            inside = !tag.end
                && tag
                    .attr("action")
                    .is_some_and(|a| decode_entities(a).split('?').next() == Some(action));
            continue;
        }
        if !inside || !(tag.is("input") || tag.is("textarea") || tag.is("select")) {
            continue;
        }
        let Some(name) = tag.attr("name") else {
            continue;
        };
        let control = if tag.is("input") {
            tag.attr("type").unwrap_or("text").to_ascii_lowercase()
        } else {
            tag.name.to_ascii_lowercase()
        };
        if name != "csrf_token" && !matches!(control.as_str(), "file" | "submit") {
            fields.push((name.to_owned(), control));
        }
    }
    fields
}

/// POSTs `fields` (urlencoded) with the session's CSRF token, as the page's form would.
async fn post(
    browser: &mut Browser,
    token: &str,
    path: &str,
    fields: &[(String, String)],
) -> TestResponse {
    let mut all = vec![("csrf_token".to_owned(), token.to_owned())];
    all.extend_from_slice(fields);
    let body = serde_urlencoded::to_string(&all).unwrap();
    browser
        .post_raw(path, "application/x-www-form-urlencoded", body)
        .await
}

fn pairs(fields: &[(&str, String)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

/// A field of a CV form: its name, where its payload is said to be, and what it accepts.
struct CvField {
    name: &'static str,
    place: String,
    kind: Kind,
}

fn basics_fields() -> Vec<CvField> {
    BASICS_FIELDS
        .iter()
        .map(|spec| CvField {
            name: spec.name,
            place: if LOCATION_FIELDS.contains(&spec.name) {
                format!("cv.basics.location.{}", spec.name)
            } else {
                format!("cv.basics.{}", spec.name)
            },
            kind: Kind::of(spec.kind),
        })
        .collect()
}

fn section_fields(section: Section) -> Vec<CvField> {
    section
        .fields()
        .iter()
        .map(|spec| CvField {
            name: spec.name,
            place: format!("cv.{section}.{}", spec.name),
            kind: Kind::of(spec.kind),
        })
        .collect()
}

/// POST routes the sweep sends payloads to. With [`TEXTLESS_POSTS`] they must name every POST
/// route of `ROUTES`, so that a new form cannot be forgotten.
const SWEPT_POSTS: [&str; 18] = [
    "/register",
    "/login",
    "/password-reset",
    "/password-reset/{token}",
    "/account/password",
    "/account/delete",
    "/profile",
    "/profile/avatar",
    "/cvs/new",
    "/cvs/import",
    "/cvs/{id}/edit",
    "/cvs/{id}/basics",
    "/cvs/{id}/sections/{section}",
    "/cvs/{id}/sections/{section}/{entry}",
    "/cvs/{id}/sections/{section}/{entry}/move",
    "/cvs/{id}/versions/{n}/restore",
    "/admin/users/new",
    "/admin/users/{id}/role",
];

/// POST routes that take no text a page could show again (a button; ids in the path).
const TEXTLESS_POSTS: [&str; 10] = [
    "/logout",
    "/profile/avatar/delete",
    "/cvs/{id}/sections/{section}/{entry}/delete",
    "/cvs/{id}/archive",
    "/cvs/{id}/unarchive",
    "/cvs/{id}/duplicate",
    "/admin/users/{id}/deactivate",
    "/admin/users/{id}/activate",
    // A confirmation box; the sweep never sends it (it would erase the sweep's own accounts).
    "/admin/users/{id}/erase",
    "/admin/cvs/{id}/archive",
];

/// Paths whose answer is not a page.
fn is_non_html(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    [".json", ".csv", ".jsonl", "/avatar", "/data"]
        .iter()
        .any(|end| path.ends_with(end))
        || path.starts_with("/static/")
}

/// The real ids the render pass puts into paths.
#[derive(Default)]
struct Ids {
    cv: String,
    owner: String,
    made_user: String,
    made_users: usize,
    work_entry: String,
    version: u64,
    positions: Vec<String>,
}

/// Every concrete path of a route pattern (several for `{n}` and `{position}`).
fn instances(pattern: &str, ids: &Ids) -> Vec<String> {
    if pattern == "/" {
        return vec!["/".into()];
    }
    let mut paths = vec![String::new()];
    for segment in pattern.split('/').skip(1) {
        let values: Vec<String> = match segment {
            "{id}" if pattern.starts_with("/admin/users/") => {
                vec![ids.owner.clone(), ids.made_user.clone()]
            }
            "{id}" if pattern.starts_with("/users/") => vec![ids.owner.clone()],
            "{id}" => vec![ids.cv.clone()],
            "{section}" => vec!["work".into()],
            "{entry}" => vec![ids.work_entry.clone()],
            "{n}" => {
                let mut versions = vec![1, ids.version.saturating_sub(1).max(1), ids.version];
                versions.dedup();
                versions.iter().map(u64::to_string).collect()
            }
            "{position}" => ids.positions.clone(),
            "{token}" => vec!["a1".repeat(32)],
            "{*path}" => vec!["app.css".into()],
            other if other.starts_with('{') => {
                panic!("the XSS sweep does not know what to put for {other} in {pattern}")
            }
            other => vec![other.to_owned()],
        };
        paths = paths
            .iter()
            .flat_map(|path| values.iter().map(move |value| format!("{path}/{value}")))
            .collect();
    }
    if pattern.ends_with("/avatar") {
        let thumbs: Vec<String> = paths.iter().map(|p| format!("{p}?size=thumb")).collect();
        paths.extend(thumbs);
    }
    paths
}

/// Who looks at a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Owner,
    Superuser,
}

/// Who renders a route: whoever may see it, and in the first round the other one too (who gets
/// a 403, or a page of their own without payloads).
fn viewers(access: Access, first_round: bool) -> Vec<Who> {
    let (allowed, other): (&[Who], &[Who]) = match access {
        Access::Superuser => (&[Who::Superuser], &[Who::Owner]),
        Access::OwnerOrSuperuser => (&[Who::Owner, Who::Superuser], &[]),
        Access::Owner | Access::User | Access::Public => (&[Who::Owner], &[Who::Superuser]),
    };
    let mut who = allowed.to_vec();
    if first_round {
        who.extend_from_slice(other);
    }
    who
}

/// A small PNG for the owner's picture.
fn png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 16) as u8, (y * 16) as u8, 99])
    });
    let mut bytes = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

/// The id after `prefix` in a location (`/cvs/{id}/edit`, `/admin/users/{id}`, `#entry-{id}`).
fn id_after(location: &str, prefix: &str) -> String {
    let start = location
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix} not in {location:?}"))
        + prefix.len();
    location[start..start + 36].to_owned()
}

/// The application under attack: a superuser (the app's own browser), an owner with a picture,
/// and the forms as their pages show them.
struct Site {
    app: TestApp,
    owner: Browser,
    owner_token: String,
    admin_token: String,
    profile_form: Vec<(String, String)>,
    register_form: Vec<(String, String)>,
    login_form: Vec<(String, String)>,
    new_user_form: Vec<(String, String)>,
}

impl Site {
    async fn new() -> Self {
        let mut app = TestApp::spawn().await;
        app.logged_in_superuser().await;
        let admin_token = app.csrf_token().await;
        let mut owner = app.new_browser();
        let registered = owner
            .register("owner", "owner@example.com", GOOD_PASSWORD)
            .await;
        assert_eq!(registered.status, StatusCode::SEE_OTHER);
        let owner_token = owner.csrf_token().await;
        let uploaded = owner
            .upload("/profile/avatar", "avatar", "me.png", "image/png", &png())
            .await;
        assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);

        let profile_form = form_fields(&owner.get("/profile").await.body, "/profile");
        let mut visitor = app.new_browser();
        let register_form = form_fields(&visitor.get("/register").await.body, "/register");
        let login_form = form_fields(&visitor.get("/login?next=/cvs").await.body, "/login");
        let new_user_form =
            form_fields(&app.get("/admin/users/new").await.body, "/admin/users/new");
        for (form, fields, at_least) in [
            ("/profile", &profile_form, 6),
            ("/register", &register_form, 4),
            ("/login", &login_form, 3),
            ("/admin/users/new", &new_user_form, 4),
        ] {
            assert!(fields.len() >= at_least, "the {form} form: {fields:?}");
        }
        Self {
            app,
            owner,
            owner_token,
            admin_token,
            profile_form,
            register_form,
            login_form,
            new_user_form,
        }
    }

    fn browser(&mut self, who: Who) -> &mut Browser {
        match who {
            Who::Owner => &mut self.owner,
            Who::Superuser => &mut self.app.browser,
        }
    }

    async fn as_owner(&mut self, path: &str, fields: &[(String, String)]) -> TestResponse {
        post(&mut self.owner, &self.owner_token, path, fields).await
    }

    async fn as_superuser(&mut self, path: &str, fields: &[(String, String)]) -> TestResponse {
        post(&mut self.app.browser, &self.admin_token, path, fields).await
    }
}

#[tokio::test]
async fn no_payload_in_any_field_renders_unescaped_anywhere() {
    let started = Instant::now();
    let mut site = Site::new().await;
    let mut sweep = Sweep::default();
    sweep
        .query_names
        .entry("/login".into())
        .or_default()
        .insert("next".into());
    let mut ids = Ids {
        owner: site.app.user_id("owner@example.com").await.to_string(),
        ..Ids::default()
    };
    for spec in ROUTES.iter().filter(|spec| spec.method == "POST") {
        assert!(
            SWEPT_POSTS.contains(&spec.path) || TEXTLESS_POSTS.contains(&spec.path),
            "POST {} is new: send it payloads in tests/app/xss.rs (SWEPT_POSTS), or list it \
             in TEXTLESS_POSTS",
            spec.path
        );
    }

    let mut stores = 0;
    let mut entries = BTreeMap::new();
    let mut rendered_positions = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut served_non_html = BTreeSet::new();
    for round in 0.. {
        if round > 0 && !sweep.pending() {
            break;
        }
        assert!(
            round < PAYLOADS.len(),
            "a field takes no payload: {:?}",
            sweep.covered
        );
        stores += store(&mut site, &mut sweep, &mut ids, &mut entries, round).await;

        // A stale edit: the 409 page keeps the (valid) input.
        let mut stale = pairs(&[("expected_version", (ids.version - 1).to_string())]);
        for field in basics_fields() {
            let place = format!("409 {}", field.place);
            let fits = |value: &str| parse_basics(&one_field(field.name, value)).is_ok();
            stale.push((
                field.name.to_owned(),
                sweep.pack(&place, field.kind, false, &fits),
            ));
        }
        let response = site
            .as_owner(&format!("/cvs/{}/basics", ids.cv), &stale)
            .await;
        sweep.expect(
            "POST /cvs/{id}/basics, stale",
            &response,
            StatusCode::CONFLICT,
        );
        sweep.check("Owner", "POST /cvs/{id}/basics (409)", &response);

        // Every GET route, as the owner and as the superuser. Audit events are rendered once
        // (they never change); a route that showed no payload in the first round is not
        // rendered again.
        let trail = site.app.get("/admin/audit").await;
        ids.positions = tags(&trail.body)
            .iter()
            .filter_map(|tag| tag.attr("href"))
            .filter_map(|href| href.strip_prefix("/admin/audit/"))
            .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
            .filter(|position| rendered_positions.insert(position.to_string()))
            .map(str::to_owned)
            .collect();
        for spec in ROUTES.iter().filter(|spec| spec.method == "GET") {
            for who in viewers(spec.access, round == 0) {
                if quiet.contains(&(spec.path, who)) {
                    continue;
                }
                let mut showed = false;
                for path in instances(spec.path, &ids) {
                    let response = site.browser(who).get(&path).await;
                    showed |= sweep.check(&format!("{who:?}"), &format!("GET {path}"), &response);
                    let content_type = response
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if is_non_html(&path) && response.status == StatusCode::OK {
                        served_non_html.insert(spec.path);
                    }
                    if is_non_html(&path)
                        && response.status == StatusCode::OK
                        && (content_type.is_empty() || content_type.starts_with("text/html"))
                    {
                        sweep.find(
                            format!("GET {path} is not a page but answers {content_type:?}"),
                            &format!("{who:?}"),
                        );
                    }
                }
                if round == 0 && !showed && !spec.path.contains("{position}") {
                    quiet.insert((spec.path, who));
                }
            }
        }
    }

    // Each non-page route answered (so its content type was checked).
    for spec in ROUTES.iter().filter(|spec| spec.method == "GET") {
        if is_non_html(spec.path) && !served_non_html.contains(spec.path) {
            sweep.find(format!("GET {} never answered 200", spec.path), "non-HTML");
        }
    }

    refused_input(&mut site, &mut sweep, &ids, &entries).await;
    reflected_input(&mut site, &mut sweep, &ids).await;

    // Every stored payload was shown somewhere, or the sweep would prove nothing.
    let mut unseen: Vec<String> = sweep
        .planted
        .iter()
        .filter(|(marker, planted)| planted.stored && !sweep.seen.contains(*marker))
        .map(|(_, planted)| format!("{} («{}»)", planted.place, planted.payload))
        .collect();
    unseen.sort();
    if !unseen.is_empty() {
        let finding = format!(
            "{} stored payloads were shown on no page: {}",
            unseen.len(),
            unseen.join(", ")
        );
        sweep.find(finding, "coverage");
    }

    let stored: Vec<&Planted> = sweep.planted.values().filter(|p| p.stored).collect();
    let stored_places: BTreeSet<&str> = stored.iter().map(|p| p.place.as_str()).collect();
    eprintln!(
        "XSS sweep: {} payloads stored in {} fields ({} values, {} store requests); {} \
         payloads planted in all; {} HTML pages and {} other answers checked in {:.1?}. \
         No room for a payload (swept as refused input only): {}",
        PAYLOADS.len(),
        stored_places.len(),
        stored.len(),
        stores,
        sweep.planted.len(),
        sweep.pages,
        sweep.non_html,
        started.elapsed(),
        sweep.neutral.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    let report: Vec<String> = sweep
        .findings
        .iter()
        .map(|(finding, requests)| {
            let shown: Vec<&str> = requests.iter().map(String::as_str).take(3).collect();
            let more = requests.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            format!("- {finding}\n    in {}{more}", shown.join("; "))
        })
        .collect();
    assert!(
        sweep.findings.is_empty(),
        "the XSS sweep found {} problems:\n{}",
        sweep.findings.len(),
        report.join("\n")
    );
}

/// Whether the profile form accepts `value` as its field `name` (an unknown field takes one
/// payload at a time).
fn profile_accepts(name: &str, value: &str) -> bool {
    let mut input = ProfileInput::default();
    let slot = match name {
        "full_name" => &mut input.full_name,
        "headline" => &mut input.headline,
        "phone" => &mut input.phone,
        "location" => &mut input.location,
        "website" => &mut input.website,
        "bio" => &mut input.bio,
        _ => return false,
    };
    *slot = value.to_owned();
    Profile::parse(&input).is_ok()
}

fn one_field(name: &str, value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(name.to_owned(), value.to_owned())])
}

/// Stores the next payloads of every text field of the profile, of a new CV (its title, a
/// rename, basics, an entry in every section and a change of one of them) and of new accounts'
/// emails: as many in each field as its rules allow. Returns the number of store requests.
async fn store(
    site: &mut Site,
    sweep: &mut Sweep,
    ids: &mut Ids,
    entries: &mut BTreeMap<Section, String>,
    round: usize,
) -> usize {
    let mut requests = 0;
    // The profile twice (its fields are short): the page after the first, the render pass
    // after the second, show them.
    for time in 0..2 {
        let profile: Vec<(String, String)> = site
            .profile_form
            .clone()
            .into_iter()
            .map(|(name, control)| {
                let place = format!("profile.{name}");
                let fits = |value: &str| profile_accepts(&name, value);
                let value = sweep.pack(&place, Kind::of_control(&control), true, &fits);
                (name, value)
            })
            .collect();
        let response = site.as_owner("/profile", &profile).await;
        sweep.expect(
            &format!("round {round}: POST /profile"),
            &response,
            StatusCode::SEE_OTHER,
        );
        requests += 1;
        if time == 0 {
            let page = site.owner.get("/profile").await;
            sweep.check("Owner", "GET /profile", &page);
        }
    }

    let title_fits = |value: &str| CvTitle::parse(value).is_ok();
    let title = sweep.pack("cv.title", Kind::Text, true, &title_fits);
    let response = site.as_owner("/cvs/new", &pairs(&[("title", title)])).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    ids.cv = id_after(response.location(), "/cvs/");
    ids.version = 1;
    requests += 1;

    // Each accepted CV form adds a version, which the next form names.
    let mut forms: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let renamed = sweep.pack("cv.title", Kind::Text, true, &title_fits);
    forms.push((
        format!("/cvs/{}/edit", ids.cv),
        pairs(&[("title", renamed)]),
    ));
    let basics = basics_fields()
        .iter()
        .map(|field| {
            let fits = |value: &str| parse_basics(&one_field(field.name, value)).is_ok();
            let value = sweep.pack(&field.place, field.kind, true, &fits);
            (field.name.to_owned(), value)
        })
        .collect();
    forms.push((format!("/cvs/{}/basics", ids.cv), basics));
    // Every section gets an entry, and one of them is changed through the entry's own form
    // (once the entry exists).
    for section in Section::ALL {
        let path = format!("/cvs/{}/sections/{section}", ids.cv);
        forms.push((path, entry_fields(sweep, section)));
    }
    requests += forms.len() + 1;
    post_cv_forms(site, sweep, ids, entries, round, forms).await;
    let changed = Section::ALL[round % Section::ALL.len()];
    let entry = entries.get(&changed).cloned().unwrap_or_default();
    let path = format!("/cvs/{}/sections/{changed}/{entry}", ids.cv);
    let change = vec![(path, entry_fields(sweep, changed))];
    post_cv_forms(site, sweep, ids, entries, round, change).await;
    ids.work_entry = entries.get(&Section::Work).cloned().unwrap_or_default();

    // A superuser creates accounts whose emails carry a payload each (in a quoted local part,
    // the only room an address has for one); four a round keep up with the other fields.
    let place = "admin.new_user.email";
    for _ in 0..4 {
        let Some(payload) = sweep.take(place) else {
            break;
        };
        let marker = sweep.marker(place, payload);
        let local = without_whitespace(&PAYLOADS[payload].text.replace("{m}", &marker))
            .replace(['"', '\\'], "'");
        let email = format!("\"{local}\"@example.com");
        // The address is kept lower case, quotes and all.
        sweep.plant(marker, place, payload, email.to_lowercase(), true);
        ids.made_users += 1;
        let fields: Vec<(String, String)> = site
            .new_user_form
            .iter()
            .map(|(name, control)| {
                let value = match (name.as_str(), Kind::of_control(control)) {
                    ("email", _) => email.clone(),
                    ("role", _) => "user".to_owned(),
                    ("username", _) => format!("made{}", ids.made_users),
                    (_, kind) => neutral_value(kind),
                };
                (name.clone(), value)
            })
            .collect();
        let response = site.as_superuser("/admin/users/new", &fields).await;
        sweep.expect(
            &format!("round {round}: POST /admin/users/new with email {email:?}"),
            &response,
            StatusCode::SEE_OTHER,
        );
        ids.made_user = if response.status == StatusCode::SEE_OTHER {
            id_after(response.location(), "/admin/users/")
        } else {
            ids.owner.clone()
        };
        requests += 1;
    }
    requests
}

/// The fields of an entry of `section`, with as many payloads in each as its rules allow.
fn entry_fields(sweep: &mut Sweep, section: Section) -> Vec<(String, String)> {
    section_fields(section)
        .iter()
        .map(|field| {
            let fits = |value: &str| parse_entry(section, &one_field(field.name, value)).is_ok();
            let value = sweep.pack(&field.place, field.kind, true, &fits);
            (field.name.to_owned(), value)
        })
        .collect()
}

/// Posts CV forms one after another, each naming the version the one before made.
async fn post_cv_forms(
    site: &mut Site,
    sweep: &mut Sweep,
    ids: &mut Ids,
    entries: &mut BTreeMap<Section, String>,
    round: usize,
    forms: Vec<(String, Vec<(String, String)>)>,
) {
    for (path, fields) in forms {
        let mut all = pairs(&[("expected_version", ids.version.to_string())]);
        all.extend(fields);
        let response = site.as_owner(&path, &all).await;
        sweep.expect(
            &format!("round {round}: POST {path}"),
            &response,
            StatusCode::SEE_OTHER,
        );
        let added = path
            .rsplit('/')
            .next()
            .and_then(|s| s.parse::<Section>().ok());
        if let (Some(section), StatusCode::SEE_OTHER) = (added, response.status) {
            entries.insert(section, id_after(response.location(), "#entry-"));
        }
        ids.version += 1;
    }
}

/// Input that must be refused, each form once with the whole corpus in every field: the 422
/// page shows it again, escaped. URL fields refuse each script, data and broken http URL.
async fn refused_input(
    site: &mut Site,
    sweep: &mut Sweep,
    ids: &Ids,
    entries: &BTreeMap<Section, String>,
) {
    const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
    // The corpus is longer than any one-line field may be, so every form refuses it.
    assert!(sweep.corpus("length").chars().count() > TEXT_MAX);
    let version = ids.version.to_string();

    let fields: Vec<(String, String)> = site
        .profile_form
        .clone()
        .into_iter()
        .map(|(name, _)| {
            let corpus = sweep.corpus(&format!("422 /profile {name}"));
            (name, corpus)
        })
        .collect();
    let response = site.as_owner("/profile", &fields).await;
    sweep.expect("POST /profile with the corpus", &response, UNPROCESSABLE);
    sweep.check("Owner", "POST /profile (422)", &response);

    // The picture: not one, and named with the corpus.
    let name = sweep.corpus("422 /profile/avatar filename");
    let response = site
        .owner
        .upload(
            "/profile/avatar",
            "avatar",
            &name,
            "image/png",
            b"not a picture",
        )
        .await;
    sweep.expect(
        "POST /profile/avatar, not a picture",
        &response,
        UNPROCESSABLE,
    );
    sweep.check("Owner", "POST /profile/avatar (422)", &response);

    // The title, of a new CV and in a rename.
    let title = sweep.corpus("422 /cvs/new title");
    let response = site.as_owner("/cvs/new", &pairs(&[("title", title)])).await;
    sweep.expect("POST /cvs/new with the corpus", &response, UNPROCESSABLE);
    sweep.check("Owner", "POST /cvs/new (422)", &response);
    let title = sweep.corpus("422 /cvs/{id}/edit title");
    let fields = pairs(&[("expected_version", version.clone()), ("title", title)]);
    let response = site
        .as_owner(&format!("/cvs/{}/edit", ids.cv), &fields)
        .await;
    sweep.expect(
        "POST /cvs/{id}/edit with the corpus",
        &response,
        UNPROCESSABLE,
    );
    sweep.check("Owner", "POST /cvs/{id}/edit (422)", &response);

    // Basics and every section's add and change forms.
    let mut forms = vec![(
        format!("/cvs/{}/basics", ids.cv),
        "/cvs/{id}/basics".to_owned(),
        basics_fields(),
    )];
    for section in Section::ALL {
        forms.push((
            format!("/cvs/{}/sections/{section}", ids.cv),
            format!("/cvs/{{id}}/sections/{section}"),
            section_fields(section),
        ));
        if let Some(entry) = entries.get(&section) {
            forms.push((
                format!("/cvs/{}/sections/{section}/{entry}", ids.cv),
                format!("/cvs/{{id}}/sections/{section}/{{entry}}"),
                section_fields(section),
            ));
        }
    }
    for (path, label, fields) in &forms {
        let mut all = pairs(&[("expected_version", version.clone())]);
        for field in fields {
            let corpus = sweep.corpus(&format!("422 {label} {}", field.name));
            all.push((field.name.to_owned(), corpus));
        }
        let response = site.as_owner(path, &all).await;
        sweep.expect(
            &format!("POST {label} with the corpus"),
            &response,
            UNPROCESSABLE,
        );
        sweep.check("Owner", &format!("POST {label} (422)"), &response);
    }

    // Each URL field on its own refuses each URL attack, marks itself invalid, and shows the
    // attack escaped. (path, field, label, the rest of the form)
    let mut url_fields = Vec::new();
    for (name, control) in &site.profile_form {
        if Kind::of_control(control) == Kind::Url {
            url_fields.push(("/profile".to_owned(), format!("profile {name}"), Vec::new()));
        }
    }
    for (path, label, fields) in forms.iter().filter(|(_, label, _)| !label.ends_with('}')) {
        for field in fields.iter().filter(|field| field.kind == Kind::Url) {
            let label = format!("{label} {}", field.name);
            url_fields.push((
                path.clone(),
                label,
                pairs(&[("expected_version", version.clone())]),
            ));
        }
    }
    for (path, label, rest) in url_fields {
        let name = label.rsplit(['.', ' ']).next().unwrap_or(&label).to_owned();
        for payload in (0..PAYLOADS.len()).filter(|&p| is_url_attack(&PAYLOADS[p])) {
            let mut fields = rest.clone();
            fields.push((
                name.clone(),
                sweep.text(&format!("refused {label}"), payload),
            ));
            let response = site.as_owner(&path, &fields).await;
            let what = format!("POST {label} = «{}»", PAYLOADS[payload].name);
            sweep.expect(&what, &response, UNPROCESSABLE);
            let marked = tags(&response.body).iter().any(|tag| {
                tag.attr("name") == Some(name.as_str()) && tag.attr("aria-invalid") == Some("true")
            });
            if !marked {
                sweep.find(format!("{what}: the field is not marked invalid"), &what);
            }
            sweep.check("Owner", &what, &response);
        }
    }

    // Moving with the corpus as the direction; restoring a version that does not exist.
    let path = format!("/cvs/{}/sections/work/{}/move", ids.cv, ids.work_entry);
    let fields = pairs(&[
        ("expected_version", version.clone()),
        ("direction", sweep.corpus("move direction")),
    ]);
    let response = site.as_owner(&path, &fields).await;
    sweep.check("Owner", "POST …/move with the corpus", &response);
    let path = format!("/cvs/{}/versions/{}/restore", ids.cv, ids.version + 5);
    let fields = pairs(&[("expected_version", sweep.corpus("restore expected_version"))]);
    let response = site.as_owner(&path, &fields).await;
    sweep.check("Owner", "POST …/restore of a missing version", &response);

    // A JSON Resume import with the corpus and a bad date, and a broken one: the error page
    // shows the text again.
    let name = sweep.corpus("422 /cvs/import basics.name");
    let date = sweep.corpus("422 /cvs/import work startDate");
    let document = serde_json::json!({
        "basics": { "name": name, "url": "javascript:alert(1)" },
        "work": [{ "name": name, "startDate": date }],
    })
    .to_string();
    let response = site
        .as_owner("/cvs/import", &pairs(&[("json", document)]))
        .await;
    sweep.expect("POST /cvs/import with the corpus", &response, UNPROCESSABLE);
    sweep.check("Owner", "POST /cvs/import (422)", &response);
    let broken = format!(
        "{{\"basics\": {{\"name\": \"{}\"",
        sweep.corpus("422 /cvs/import (broken) text")
    );
    let response = site
        .as_owner("/cvs/import", &pairs(&[("json", broken)]))
        .await;
    sweep.expect("POST /cvs/import, broken JSON", &response, UNPROCESSABLE);
    sweep.check("Owner", "POST /cvs/import (422, syntax)", &response);

    // The password form: a wrong current password, the corpus everywhere.
    let fields: Vec<(String, String)> =
        ["current_password", "new_password", "new_password_confirm"]
            .iter()
            .map(|name| {
                let corpus = sweep.corpus(&format!("/account/password {name}"));
                ((*name).to_owned(), corpus)
            })
            .collect();
    let response = site.as_owner("/account/password", &fields).await;
    sweep.expect(
        "POST /account/password with the corpus",
        &response,
        UNPROCESSABLE,
    );
    sweep.check("Owner", "POST /account/password (422)", &response);

    // Deleting the account with a wrong password: the confirmation page again, with a message.
    let password = sweep.corpus("/account/delete password");
    let response = site
        .as_owner("/account/delete", &pairs(&[("password", password)]))
        .await;
    sweep.expect(
        "POST /account/delete with the corpus",
        &response,
        UNPROCESSABLE,
    );
    sweep.check("Owner", "POST /account/delete (422)", &response);

    // The anonymous forms, from a visitor (who has not failed a login before).
    let mut visitor = site.app.new_browser();
    visitor.peer = "198.51.100.7:40000".parse().unwrap();
    let token = visitor.csrf_token().await;
    for (path, form) in [
        ("/register", site.register_form.clone()),
        ("/login", site.login_form.clone()),
    ] {
        let fields: Vec<(String, String)> = form
            .into_iter()
            .map(|(name, control)| {
                let value = match Kind::of_control(&control) {
                    Kind::Password if path == "/register" => GOOD_PASSWORD.to_owned(),
                    _ => sweep.corpus(&format!("422 {path} {name}")),
                };
                (name, value)
            })
            .collect();
        let response = post(&mut visitor, &token, path, &fields).await;
        sweep.expect(
            &format!("POST {path} with the corpus"),
            &response,
            UNPROCESSABLE,
        );
        sweep.check("visitor", &format!("POST {path} (422)"), &response);
    }
    let fields = pairs(&[("email", sweep.corpus("/password-reset email"))]);
    let response = post(&mut visitor, &token, "/password-reset", &fields).await;
    sweep.check("visitor", "POST /password-reset", &response);
    let fields = pairs(&[
        (
            "new_password",
            sweep.corpus("/password-reset/{token} new_password"),
        ),
        ("new_password_confirm", GOOD_PASSWORD.to_owned()),
    ]);
    let path = format!("/password-reset/{}", "b2".repeat(32));
    let response = post(&mut visitor, &token, &path, &fields).await;
    sweep.check("visitor", "POST /password-reset/{token}", &response);

    // The superuser's forms: a new user (with a valid role, and with the corpus as the role,
    // which the form checks first), and the corpus as a user's role.
    for valid_role in [true, false] {
        let fields: Vec<(String, String)> = site
            .new_user_form
            .clone()
            .into_iter()
            .map(|(name, control)| {
                let value = match Kind::of_control(&control) {
                    Kind::Password => GOOD_PASSWORD.to_owned(),
                    Kind::Choice if valid_role => "user".to_owned(),
                    _ => sweep.corpus(&format!("422 /admin/users/new (role {valid_role}) {name}")),
                };
                (name, value)
            })
            .collect();
        let response = site.as_superuser("/admin/users/new", &fields).await;
        let what = format!("POST /admin/users/new with the corpus (valid role: {valid_role})");
        sweep.expect(&what, &response, UNPROCESSABLE);
        sweep.check("Superuser", &what, &response);
    }
    let fields = pairs(&[
        ("role", sweep.corpus("/admin/users/{id}/role role")),
        ("confirm", sweep.corpus("/admin/users/{id}/role confirm")),
    ]);
    let path = format!("/admin/users/{}/role", ids.owner);
    let response = site.as_superuser(&path, &fields).await;
    sweep.check(
        "Superuser",
        "POST /admin/users/{id}/role with the corpus",
        &response,
    );
}

/// Reflected input: every query parameter the app's links and GET forms use, on the page they
/// go to (one at a time, and all together on every GET route), and every path parameter.
async fn reflected_input(site: &mut Site, sweep: &mut Sweep, ids: &Ids) {
    let targets = sweep.query_names.clone();
    for (target, names) in &targets {
        let Some(spec) = ROUTES
            .iter()
            .find(|spec| spec.method == "GET" && spec.path == target.as_str())
        else {
            continue;
        };
        let who = viewers(spec.access, false)[0];
        for name in names {
            let value = encode(&sweep.corpus(&format!("query {target}?{name}")));
            let response = site
                .browser(who)
                .get(&format!("{target}?{name}={value}"))
                .await;
            sweep.check(
                &format!("{who:?}"),
                &format!("GET {target}?{name}=<corpus>"),
                &response,
            );
        }
    }
    let all_names: BTreeSet<&String> = targets.values().flatten().collect();
    let query = all_names
        .iter()
        .map(|name| {
            format!(
                "{name}={}",
                encode(&sweep.corpus(&format!("query ?{name}")))
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    for spec in ROUTES.iter().filter(|spec| spec.method == "GET") {
        let who = viewers(spec.access, false)[0];
        if let Some(path) = instances(spec.path, ids).into_iter().next() {
            let path = path.split('?').next().unwrap_or(&path).to_owned();
            let response = site.browser(who).get(&format!("{path}?{query}")).await;
            let request = format!("GET {path}?<every query parameter>");
            sweep.check(&format!("{who:?}"), &request, &response);
        }
        if spec.path.contains('{') {
            let path: Vec<String> = spec
                .path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        encode(&sweep.corpus(&format!("path {}", spec.path)))
                    } else {
                        segment.to_owned()
                    }
                })
                .collect();
            let response = site.browser(who).get(&path.join("/")).await;
            let request = format!("GET {} with the corpus for its parameters", spec.path);
            sweep.check(&format!("{who:?}"), &request, &response);
        }
    }
}
