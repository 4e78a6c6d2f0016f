//! Mapping Echo Nest artist terms (and MusicBrainz tags, and artist locations) to a fixed set of
//! genre/type categories and languages. The tables below are the documentation of the mapping.
//!
//! Normalisation: lower case, `-`, `_`, `/`, `,` and `.` become spaces, words split on spaces;
//! "hip-hop" → `hip hop`, "J-Pop" → `j pop`, "Rock en Español" → `rock en español`.
//!
//! Genre of one term: the first entry of [`GENRE_PHRASES`] whose words occur consecutively in the
//! term (multi-word and special cases first, so "lovers rock" is reggae and "happy hardcore" is
//! electronic); otherwise the term's words are scanned from the **last** to the first (the head
//! word of an English genre compound comes last: "dance pop" is pop, "pop rock" is rock, "pop
//! punk" is punk) and the first word found in [`GENRE_WORDS`] decides. Terms that match nothing
//! ("male", "80s", "england", "cover") carry no genre.
//!
//! Language of one term: the first entry of [`LANGUAGE_TERMS`] whose words occur consecutively in
//! the term ("french pop" → French, "j pop" → Japanese, "latin" → Spanish, "england" → English).
//! Location: the same phrase matching on the artist location with [`LANGUAGE_PLACES`].

/// Genre/type categories, in the order of `/portrait/genre_names`.
pub const GENRES: [&str; 18] = [
    "rock",
    "pop",
    "hip hop",
    "electronic",
    "r&b / soul",
    "jazz",
    "blues",
    "classical",
    "country",
    "folk",
    "metal",
    "punk",
    "reggae",
    "latin",
    "world",
    "soundtrack",
    "easy listening",
    "religious",
];

const ROCK: u8 = 0;
const POP: u8 = 1;
const HIPHOP: u8 = 2;
const ELECTRONIC: u8 = 3;
const RNB: u8 = 4;
const JAZZ: u8 = 5;
const BLUES: u8 = 6;
const CLASSICAL: u8 = 7;
const COUNTRY: u8 = 8;
const FOLK: u8 = 9;
const METAL: u8 = 10;
const PUNK: u8 = 11;
const REGGAE: u8 = 12;
const LATIN: u8 = 13;
const WORLD: u8 = 14;
const SOUNDTRACK: u8 = 15;
const EASY: u8 = 16;
const RELIGIOUS: u8 = 17;

/// Phrases checked first, in order (consecutive words anywhere in the normalised term).
pub const GENRE_PHRASES: &[(&str, u8)] = &[
    ("lovers rock", REGGAE),
    ("roots reggae", REGGAE),
    ("ska punk", PUNK),
    ("happy hardcore", ELECTRONIC),
    ("hardcore techno", ELECTRONIC),
    ("drum and bass", ELECTRONIC),
    ("drum n bass", ELECTRONIC),
    ("trip hop", ELECTRONIC),
    ("big beat", ELECTRONIC),
    ("uk garage", ELECTRONIC),
    ("speed garage", ELECTRONIC),
    ("new wave", ROCK),
    ("hip hop", HIPHOP),
    ("g funk", HIPHOP),
    ("dirty south", HIPHOP),
    ("rhythm and blues", RNB),
    ("r&b", RNB),
    ("doo wop", RNB),
    ("new jack swing", RNB),
    ("quiet storm", RNB),
    ("christian rock", RELIGIOUS),
    ("christian metal", RELIGIOUS),
    ("christian hip hop", RELIGIOUS),
    ("southern gospel", RELIGIOUS),
    ("rock en español", LATIN),
    ("rock en espanol", LATIN),
    ("latin jazz", LATIN),
    ("latin pop", LATIN),
    ("latin rock", LATIN),
    ("bossa nova", LATIN),
    ("smooth jazz", JAZZ),
    ("big band", JAZZ),
    ("hard bop", JAZZ),
    ("easy listening", EASY),
    ("adult contemporary", EASY),
    ("new age", EASY),
    ("space age pop", EASY),
    ("film score", SOUNDTRACK),
    ("video game", SOUNDTRACK),
    ("show tunes", SOUNDTRACK),
    ("world music", WORLD),
    ("singer songwriter", FOLK),
    ("country rock", COUNTRY),
    ("alt country", COUNTRY),
    ("honky tonk", COUNTRY),
    ("western swing", COUNTRY),
    ("k pop", POP),
    ("j pop", POP),
    ("c pop", POP),
    ("j rock", ROCK),
    ("j rap", HIPHOP),
    ("visual kei", ROCK),
    ("early music", CLASSICAL),
    ("string quartet", CLASSICAL),
    ("contemporary classical", CLASSICAL),
];

/// Single words, checked from the last word of the term to the first.
pub const GENRE_WORDS: &[(&str, u8)] = &[
    // rock
    ("rock", ROCK),
    ("grunge", ROCK),
    ("britpop", ROCK),
    ("shoegaze", ROCK),
    ("indie", ROCK),
    ("alternative", ROCK),
    ("garage", ROCK),
    ("psychedelic", ROCK),
    ("psychedelia", ROCK),
    ("rockabilly", ROCK),
    ("krautrock", ROCK),
    ("surf", ROCK),
    ("glam", ROCK),
    ("progressive", ROCK),
    ("merseybeat", ROCK),
    // pop
    ("pop", POP),
    ("europop", POP),
    ("bubblegum", POP),
    ("schlager", POP),
    ("chanson", POP),
    ("mandopop", POP),
    ("cantopop", POP),
    ("kpop", POP),
    ("jpop", POP),
    ("idol", POP),
    // hip hop
    ("rap", HIPHOP),
    ("hiphop", HIPHOP),
    ("crunk", HIPHOP),
    ("grime", HIPHOP),
    ("hyphy", HIPHOP),
    ("turntablism", HIPHOP),
    ("gangsta", HIPHOP),
    // electronic / dance
    ("electronic", ELECTRONIC),
    ("electronica", ELECTRONIC),
    ("electro", ELECTRONIC),
    ("techno", ELECTRONIC),
    ("house", ELECTRONIC),
    ("trance", ELECTRONIC),
    ("dnb", ELECTRONIC),
    ("jungle", ELECTRONIC),
    ("dubstep", ELECTRONIC),
    ("idm", ELECTRONIC),
    ("ambient", ELECTRONIC),
    ("downtempo", ELECTRONIC),
    ("breakbeat", ELECTRONIC),
    ("breaks", ELECTRONIC),
    ("edm", ELECTRONIC),
    ("dance", ELECTRONIC),
    ("eurodance", ELECTRONIC),
    ("disco", ELECTRONIC),
    ("synthpop", ELECTRONIC),
    ("industrial", ELECTRONIC),
    ("glitch", ELECTRONIC),
    ("chiptune", ELECTRONIC),
    ("electroclash", ELECTRONIC),
    ("hardstyle", ELECTRONIC),
    ("gabber", ELECTRONIC),
    ("club", ELECTRONIC),
    // r&b / soul / funk
    ("soul", RNB),
    ("funk", RNB),
    ("rnb", RNB),
    ("motown", RNB),
    // jazz
    ("jazz", JAZZ),
    ("bebop", JAZZ),
    ("swing", JAZZ),
    ("fusion", JAZZ),
    ("ragtime", JAZZ),
    ("dixieland", JAZZ),
    // blues
    ("blues", BLUES),
    ("boogie", BLUES),
    // classical
    ("classical", CLASSICAL),
    ("orchestra", CLASSICAL),
    ("orchestral", CLASSICAL),
    ("symphony", CLASSICAL),
    ("symphonic", CLASSICAL),
    ("opera", CLASSICAL),
    ("baroque", CLASSICAL),
    ("chamber", CLASSICAL),
    ("choral", CLASSICAL),
    ("renaissance", CLASSICAL),
    ("medieval", CLASSICAL),
    ("minimalism", CLASSICAL),
    // country
    ("country", COUNTRY),
    ("bluegrass", COUNTRY),
    ("americana", COUNTRY),
    ("outlaw", COUNTRY),
    // folk
    ("folk", FOLK),
    ("acoustic", FOLK),
    ("celtic", FOLK),
    ("neofolk", FOLK),
    // metal
    ("metal", METAL),
    ("metalcore", METAL),
    ("deathcore", METAL),
    ("grindcore", METAL),
    ("thrash", METAL),
    ("doom", METAL),
    ("sludge", METAL),
    ("djent", METAL),
    // punk
    ("punk", PUNK),
    ("hardcore", PUNK),
    ("emo", PUNK),
    ("screamo", PUNK),
    ("oi", PUNK),
    // reggae
    ("reggae", REGGAE),
    ("ska", REGGAE),
    ("dub", REGGAE),
    ("dancehall", REGGAE),
    ("rocksteady", REGGAE),
    ("ragga", REGGAE),
    // latin
    ("latin", LATIN),
    ("salsa", LATIN),
    ("reggaeton", LATIN),
    ("merengue", LATIN),
    ("bachata", LATIN),
    ("cumbia", LATIN),
    ("bolero", LATIN),
    ("ranchera", LATIN),
    ("mariachi", LATIN),
    ("tejano", LATIN),
    ("norteno", LATIN),
    ("norteño", LATIN),
    ("banda", LATIN),
    ("samba", LATIN),
    ("tango", LATIN),
    ("flamenco", LATIN),
    ("mambo", LATIN),
    ("vallenato", LATIN),
    ("mpb", LATIN),
    ("sertanejo", LATIN),
    ("forro", LATIN),
    ("forró", LATIN),
    // world
    ("world", WORLD),
    ("afrobeat", WORLD),
    ("african", WORLD),
    ("highlife", WORLD),
    ("soukous", WORLD),
    ("bhangra", WORLD),
    ("bollywood", WORLD),
    ("filmi", WORLD),
    ("klezmer", WORLD),
    ("calypso", WORLD),
    ("soca", WORLD),
    ("zouk", WORLD),
    ("fado", WORLD),
    ("rai", WORLD),
    ("qawwali", WORLD),
    ("enka", WORLD),
    ("polka", WORLD),
    // soundtrack
    ("soundtrack", SOUNDTRACK),
    ("soundtracks", SOUNDTRACK),
    ("score", SOUNDTRACK),
    ("musical", SOUNDTRACK),
    ("musicals", SOUNDTRACK),
    ("broadway", SOUNDTRACK),
    ("anime", SOUNDTRACK),
    // easy listening
    ("lounge", EASY),
    ("chillout", EASY),
    ("exotica", EASY),
    ("crooner", EASY),
    // religious
    ("gospel", RELIGIOUS),
    ("christian", RELIGIOUS),
    ("ccm", RELIGIOUS),
    ("worship", RELIGIOUS),
    ("praise", RELIGIOUS),
    ("hymns", RELIGIOUS),
    ("spiritual", RELIGIOUS),
];

/// Languages, in the order of `/portrait/language_names` (index 0 is "unknown").
pub const LANGUAGES: [&str; 16] = [
    "unknown",
    "english",
    "spanish",
    "portuguese",
    "french",
    "german",
    "italian",
    "japanese",
    "korean",
    "chinese",
    "russian",
    "hindi",
    "arabic",
    "turkish",
    "greek",
    "dutch",
];

const EN: u16 = 1;
const ES: u16 = 2;
const PT: u16 = 3;
const FR: u16 = 4;
const DE: u16 = 5;
const IT: u16 = 6;
const JA: u16 = 7;
const KO: u16 = 8;
const ZH: u16 = 9;
const RU: u16 = 10;
const HI: u16 = 11;
const AR: u16 = 12;
const TR: u16 = 13;
const EL: u16 = 14;
const NL: u16 = 15;

/// Artist terms (Echo Nest terms, MusicBrainz tags) that name a language, a sung-language genre
/// or a place whose music is sung in one language. Checked in order; phrases first.
pub const LANGUAGE_TERMS: &[(&str, u16)] = &[
    // genres named after a country but mostly sung in English: no language evidence (0)
    ("italian disco", 0),
    ("italo disco", 0),
    ("italo dance", 0),
    ("german artist", DE),
    // phrases that would otherwise hit a single word below
    ("rock en español", ES),
    ("rock en espanol", ES),
    ("nueva canción", ES),
    ("nueva cancion", ES),
    ("bossa nova", PT),
    ("neue deutsche welle", DE),
    ("chanson française", FR),
    ("chanson francaise", FR),
    ("variété française", FR),
    ("variete francaise", FR),
    ("visual kei", JA),
    ("shibuya kei", JA),
    ("j pop", JA),
    ("j rock", JA),
    ("j rap", JA),
    ("j metal", JA),
    ("k pop", KO),
    ("k rock", KO),
    ("c pop", ZH),
    ("hong kong", ZH),
    ("new zealand", EN),
    ("united states", EN),
    ("united kingdom", EN),
    ("british invasion", EN),
    ("uk garage", EN),
    // English
    ("english", EN),
    ("british", EN),
    ("uk", EN),
    ("england", EN),
    ("american", EN),
    ("usa", EN),
    ("australian", EN),
    ("australia", EN),
    ("irish", EN),
    ("ireland", EN),
    ("scottish", EN),
    ("scotland", EN),
    ("welsh", EN),
    ("wales", EN),
    ("britpop", EN),
    ("merseybeat", EN),
    // Spanish
    ("spanish", ES),
    ("español", ES),
    ("espanol", ES),
    ("latin", ES),
    ("latino", ES),
    ("reggaeton", ES),
    ("salsa", ES),
    ("bachata", ES),
    ("merengue", ES),
    ("cumbia", ES),
    ("bolero", ES),
    ("ranchera", ES),
    ("mariachi", ES),
    ("tejano", ES),
    ("norteno", ES),
    ("norteño", ES),
    ("banda", ES),
    ("duranguense", ES),
    ("vallenato", ES),
    ("flamenco", ES),
    ("tango", ES),
    ("mexican", ES),
    ("mexico", ES),
    ("spain", ES),
    ("argentina", ES),
    ("argentinian", ES),
    ("chilean", ES),
    ("colombian", ES),
    ("cuban", ES),
    ("trova", ES),
    // Portuguese
    ("brazilian", PT),
    ("brazil", PT),
    ("brasil", PT),
    ("mpb", PT),
    ("samba", PT),
    ("sertanejo", PT),
    ("forro", PT),
    ("forró", PT),
    ("axe", PT),
    ("axé", PT),
    ("pagode", PT),
    ("tropicalia", PT),
    ("portuguese", PT),
    ("fado", PT),
    // French
    ("french", FR),
    ("france", FR),
    ("chanson", FR),
    ("francophone", FR),
    ("quebec", FR),
    ("québec", FR),
    ("québécois", FR),
    // German
    ("german", DE),
    ("germany", DE),
    ("deutsch", DE),
    ("deutschrock", DE),
    ("deutschrap", DE),
    ("deutschpunk", DE),
    ("schlager", DE),
    ("austrian", DE),
    ("liedermacher", DE),
    ("volksmusik", DE),
    // Italian
    ("italian", IT),
    ("italy", IT),
    ("cantautore", IT),
    ("cantautori", IT),
    // Japanese
    ("japanese", JA),
    ("japan", JA),
    ("jpop", JA),
    ("jrock", JA),
    ("enka", JA),
    ("anime", JA),
    // Korean
    ("korean", KO),
    ("korea", KO),
    ("kpop", KO),
    // Chinese
    ("chinese", ZH),
    ("mandarin", ZH),
    ("cantonese", ZH),
    ("mandopop", ZH),
    ("cantopop", ZH),
    ("taiwanese", ZH),
    // Russian
    ("russian", RU),
    ("russia", RU),
    // Hindi
    ("bollywood", HI),
    ("hindi", HI),
    ("filmi", HI),
    // Arabic
    ("arabic", AR),
    ("arab", AR),
    ("rai", AR),
    // Turkish
    ("turkish", TR),
    // Greek
    ("greek", EL),
    ("laiko", EL),
    ("rebetiko", EL),
    ("entechno", EL),
    // Dutch
    ("nederpop", NL),
    ("nederlandstalig", NL),
];

/// Words and phrases of artist locations ("Memphis, TN", "Newton-le-Willows, Merseyside,
/// England", "Mexico City, Mexico"). Used only when no artist term names a language: where
/// an artist comes from is weaker evidence than what their music is called.
pub const LANGUAGE_PLACES: &[(&str, u16)] = &[
    // Spanish
    ("mexico", ES),
    ("méxico", ES),
    ("spain", ES),
    ("españa", ES),
    ("madrid", ES),
    ("barcelona", ES),
    ("argentina", ES),
    ("buenos aires", ES),
    ("colombia", ES),
    ("bogota", ES),
    ("bogotá", ES),
    ("chile", ES),
    ("santiago", ES),
    ("peru", ES),
    ("perú", ES),
    ("lima", ES),
    ("venezuela", ES),
    ("caracas", ES),
    ("cuba", ES),
    ("havana", ES),
    ("la habana", ES),
    ("puerto rico", ES),
    ("san juan", ES),
    ("dominican republic", ES),
    ("santo domingo", ES),
    ("ecuador", ES),
    ("bolivia", ES),
    ("uruguay", ES),
    ("montevideo", ES),
    ("paraguay", ES),
    ("guatemala", ES),
    ("honduras", ES),
    ("el salvador", ES),
    ("nicaragua", ES),
    ("costa rica", ES),
    ("panama", ES),
    ("monterrey", ES),
    ("guadalajara", ES),
    ("sinaloa", ES),
    // Portuguese
    ("brazil", PT),
    ("brasil", PT),
    ("rio de janeiro", PT),
    ("sao paulo", PT),
    ("são paulo", PT),
    ("bahia", PT),
    ("salvador", PT),
    ("portugal", PT),
    ("lisbon", PT),
    ("lisboa", PT),
    // French
    ("france", FR),
    ("paris", FR),
    ("marseille", FR),
    ("lyon", FR),
    ("quebec", FR),
    ("québec", FR),
    // German
    ("germany", DE),
    ("deutschland", DE),
    ("berlin", DE),
    ("hamburg", DE),
    ("munich", DE),
    ("münchen", DE),
    ("cologne", DE),
    ("köln", DE),
    ("frankfurt", DE),
    ("düsseldorf", DE),
    ("dusseldorf", DE),
    ("austria", DE),
    ("vienna", DE),
    ("wien", DE),
    // Italian
    ("italy", IT),
    ("italia", IT),
    ("rome", IT),
    ("roma", IT),
    ("milan", IT),
    ("milano", IT),
    ("naples", IT),
    ("napoli", IT),
    ("turin", IT),
    ("torino", IT),
    // Japanese
    ("japan", JA),
    ("tokyo", JA),
    ("osaka", JA),
    ("kyoto", JA),
    // Korean
    ("korea", KO),
    ("seoul", KO),
    // Chinese
    ("china", ZH),
    ("beijing", ZH),
    ("shanghai", ZH),
    ("taiwan", ZH),
    ("taipei", ZH),
    ("hong kong", ZH),
    // Russian
    ("russia", RU),
    ("moscow", RU),
    ("st petersburg", RU),
    ("saint petersburg", RU),
    // Hindi
    ("india", HI),
    ("mumbai", HI),
    ("bombay", HI),
    ("delhi", HI),
    // Arabic
    ("egypt", AR),
    ("cairo", AR),
    ("lebanon", AR),
    ("beirut", AR),
    ("algeria", AR),
    ("morocco", AR),
    ("tunisia", AR),
    ("syria", AR),
    ("iraq", AR),
    ("saudi arabia", AR),
    // Turkish
    ("turkey", TR),
    ("istanbul", TR),
    ("ankara", TR),
    ("jamaica", EN),
    ("trinidad", EN),
    ("barbados", EN),
    ("bahamas", EN),
    // Greek
    ("greece", EL),
    ("athens", EL),
    // Dutch: the Netherlands and Flanders have large English-singing scenes, so only Dutch-
    // language terms (above) mark Dutch; places do not.
    // English
    ("usa", EN),
    ("united states", EN),
    ("us", EN),
    ("u s a", EN),
    ("uk", EN),
    ("united kingdom", EN),
    ("england", EN),
    ("scotland", EN),
    ("wales", EN),
    ("ireland", EN),
    ("northern ireland", EN),
    ("australia", EN),
    ("new zealand", EN),
    ("canada", EN),
    ("london", EN),
    ("manchester", EN),
    ("liverpool", EN),
    ("birmingham", EN),
    ("glasgow", EN),
    ("dublin", EN),
    ("sydney", EN),
    ("melbourne", EN),
    ("toronto", EN),
    ("vancouver", EN),
    ("new york", EN),
    ("nyc", EN),
    ("brooklyn", EN),
    ("los angeles", EN),
    ("chicago", EN),
    ("detroit", EN),
    ("nashville", EN),
    ("memphis", EN),
    ("atlanta", EN),
    ("seattle", EN),
    ("boston", EN),
    ("philadelphia", EN),
    ("houston", EN),
    ("new orleans", EN),
    ("san francisco", EN),
    // US states (names and postal codes, which follow a comma in MSD locations)
    ("alabama", EN),
    ("al", EN),
    ("alaska", EN),
    ("ak", EN),
    ("arizona", EN),
    ("az", EN),
    ("arkansas", EN),
    ("ar", EN),
    ("california", EN),
    ("ca", EN),
    ("colorado", EN),
    ("co", EN),
    ("connecticut", EN),
    ("ct", EN),
    ("delaware", EN),
    ("de", EN),
    ("florida", EN),
    ("fl", EN),
    ("georgia", EN),
    ("ga", EN),
    ("hawaii", EN),
    ("hi", EN),
    ("idaho", EN),
    ("id", EN),
    ("illinois", EN),
    ("il", EN),
    ("indiana", EN),
    ("in", EN),
    ("iowa", EN),
    ("ia", EN),
    ("kansas", EN),
    ("ks", EN),
    ("kentucky", EN),
    ("ky", EN),
    ("louisiana", EN),
    ("la", EN),
    ("maine", EN),
    ("me", EN),
    ("maryland", EN),
    ("md", EN),
    ("massachusetts", EN),
    ("ma", EN),
    ("michigan", EN),
    ("mi", EN),
    ("minnesota", EN),
    ("mn", EN),
    ("mississippi", EN),
    ("ms", EN),
    ("missouri", EN),
    ("mo", EN),
    ("montana", EN),
    ("mt", EN),
    ("nebraska", EN),
    ("ne", EN),
    ("nevada", EN),
    ("nv", EN),
    ("new hampshire", EN),
    ("nh", EN),
    ("new jersey", EN),
    ("nj", EN),
    ("new mexico", EN),
    ("nm", EN),
    ("ny", EN),
    ("north carolina", EN),
    ("nc", EN),
    ("north dakota", EN),
    ("nd", EN),
    ("ohio", EN),
    ("oh", EN),
    ("oklahoma", EN),
    ("ok", EN),
    ("oregon", EN),
    ("or", EN),
    ("pennsylvania", EN),
    ("pa", EN),
    ("rhode island", EN),
    ("ri", EN),
    ("south carolina", EN),
    ("sc", EN),
    ("south dakota", EN),
    ("sd", EN),
    ("tennessee", EN),
    ("tn", EN),
    ("texas", EN),
    ("tx", EN),
    ("utah", EN),
    ("ut", EN),
    ("vermont", EN),
    ("vt", EN),
    ("virginia", EN),
    ("va", EN),
    ("washington", EN),
    ("wa", EN),
    ("dc", EN),
    ("west virginia", EN),
    ("wv", EN),
    ("wisconsin", EN),
    ("wi", EN),
    ("wyoming", EN),
    ("wy", EN),
];

/// Lower case, separators to spaces, words.
pub fn normalize(term: &str) -> Vec<String> {
    term.to_lowercase()
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '_' | '/' | ',' | '.' | '(' | ')'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// True when the words of `phrase` occur consecutively in `words`.
fn contains_phrase(words: &[String], phrase: &str) -> bool {
    let p: Vec<&str> = phrase.split(' ').collect();
    if p.len() > words.len() {
        return false;
    }
    words
        .windows(p.len())
        .any(|w| w.iter().zip(&p).all(|(a, b)| a == b))
}

/// Genre category of one term (index into [`GENRES`]), if any.
pub fn genre_of_term(term: &str) -> Option<u8> {
    let words = normalize(term);
    if words.is_empty() {
        return None;
    }
    for &(p, g) in GENRE_PHRASES {
        if contains_phrase(&words, p) {
            return Some(g);
        }
    }
    for w in words.iter().rev() {
        if let Some(&(_, g)) = GENRE_WORDS.iter().find(|(k, _)| k == w) {
            return Some(g);
        }
    }
    None
}

/// Language (index into [`LANGUAGES`], never 0) named by one term, if any.
pub fn language_of_term(term: &str) -> Option<u16> {
    let words = normalize(term);
    LANGUAGE_TERMS
        .iter()
        .find(|(p, _)| contains_phrase(&words, p))
        .map(|&(_, l)| l)
        .filter(|&l| l != 0)
}

/// Language suggested by an artist location, if any. Places are matched by their words, so a
/// US postal code only counts as a whole word ("Memphis, TN").
pub fn language_of_place(location: &str) -> Option<u16> {
    let words = normalize(location);
    if words.is_empty() {
        return None;
    }
    // Countries and cities first (longest phrases first within the table order), then the
    // two-letter codes, which are only trusted as the last word ("Austin, TX").
    for &(p, l) in LANGUAGE_PLACES {
        if p.len() == 2 && !p.contains(' ') {
            continue;
        }
        if contains_phrase(&words, p) {
            return Some(l);
        }
    }
    let last = words.last().map(String::as_str).unwrap_or("");
    LANGUAGE_PLACES
        .iter()
        .find(|(p, _)| p.len() == 2 && *p == last)
        .map(|&(_, l)| l)
}

/// Language suggested by the writing system of a title or artist name: kana → Japanese,
/// Hangul → Korean, Han only → Chinese, Cyrillic → Russian, Greek → Greek, Arabic → Arabic.
pub fn language_of_script(text: &str) -> Option<u16> {
    let (mut kana, mut hangul, mut han, mut cyr, mut greek, mut arabic) = (0, 0, 0, 0, 0, 0);
    for c in text.chars() {
        match c as u32 {
            0x3040..=0x30FF | 0x31F0..=0x31FF => kana += 1,
            0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F => hangul += 1,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF => han += 1,
            0x0400..=0x04FF => cyr += 1,
            0x0370..=0x03FF => greek += 1,
            0x0600..=0x06FF => arabic += 1,
            _ => {}
        }
    }
    if kana > 0 {
        Some(JA)
    } else if hangul > 0 {
        Some(KO)
    } else if han > 0 {
        Some(ZH)
    } else if cyr > 1 {
        Some(RU)
    } else if greek > 1 {
        Some(EL)
    } else if arabic > 1 {
        Some(AR)
    } else {
        None
    }
}

/// Genre category and the term that gave it: the highest-weighted term with a category.
/// `terms` must be sorted by relevance, most relevant first.
pub fn song_genre<'a>(terms: impl IntoIterator<Item = &'a str>) -> Option<(u8, &'a str)> {
    terms
        .into_iter()
        .find_map(|t| genre_of_term(t).map(|g| (g, t)))
}

/// Weight of the artist-location evidence in [`song_language`]: the same as a term of weight
/// 0.5 (the third term of a rank-weighted list).
pub const PLACE_WEIGHT: f64 = 0.5;

/// Least total vote that decides a language (a single term must be among the top 5 of a
/// rank-weighted list, or weigh 0.2): one low-ranked term is not evidence.
pub const MIN_VOTE: f64 = 0.2;

/// Language of a song (index into [`LANGUAGES`], 0 = unknown):
/// 1. the writing system of its title, else of its artist name, when it is not Latin
///    ([`language_of_script`]) — decisive;
/// 2. otherwise a weighted vote: every artist term naming a language votes with the term's
///    weight (Echo Nest weight in 0..1, or 1/(rank+1) when a table gives only the order), and the
///    artist location votes with [`PLACE_WEIGHT`]; the language with the largest total wins
///    (ties: the lower index). Single low-ranked terms are common noise in the Echo Nest data
///    ("chanson" as the 6th term of a Florida country singer), which the vote outweighs.
pub fn song_language<'a>(
    title: &str,
    artist: &str,
    terms: impl IntoIterator<Item = (&'a str, f64)>,
    location: &str,
) -> u16 {
    if let Some(l) = language_of_script(title).or_else(|| language_of_script(artist)) {
        return l;
    }
    let mut votes = [0f64; LANGUAGES.len()];
    for (t, w) in terms {
        if let Some(l) = language_of_term(t) {
            votes[l as usize] += w.max(0.0);
        }
    }
    if let Some(l) = language_of_place(location) {
        votes[l as usize] += PLACE_WEIGHT;
    }
    let mut best = 0usize;
    for l in 1..votes.len() {
        if votes[l] >= MIN_VOTE && votes[l] > votes[best] {
            best = l;
        }
    }
    best as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(t: &str) -> Option<&'static str> {
        genre_of_term(t).map(|i| GENRES[i as usize])
    }
    fn l(t: &str) -> Option<&'static str> {
        language_of_term(t).map(|i| LANGUAGES[i as usize])
    }

    #[test]
    fn genre_heads() {
        assert_eq!(g("dance pop"), Some("pop"));
        assert_eq!(g("pop rock"), Some("rock"));
        assert_eq!(g("pop punk"), Some("punk"));
        assert_eq!(g("Hip-Hop"), Some("hip hop"));
        assert_eq!(g("lovers rock"), Some("reggae"));
        assert_eq!(g("happy hardcore"), Some("electronic"));
        assert_eq!(g("R&B"), Some("r&b / soul"));
        assert_eq!(g("adult contemporary"), Some("easy listening"));
        assert_eq!(g("male"), None);
        assert_eq!(g("80s"), None);
        assert_eq!(g(""), None);
    }

    #[test]
    fn languages() {
        assert_eq!(l("french pop"), Some("french"));
        assert_eq!(l("J-Pop"), Some("japanese"));
        assert_eq!(l("k-pop"), Some("korean"));
        assert_eq!(l("latin"), Some("spanish"));
        assert_eq!(l("rock en español"), Some("spanish"));
        assert_eq!(l("brazilian pop"), Some("portuguese"));
        assert_eq!(l("german"), Some("german"));
        assert_eq!(l("england"), Some("english"));
        assert_eq!(l("rock"), None);
        let p = |s| language_of_place(s).map(|i| LANGUAGES[i as usize]);
        assert_eq!(p("Memphis, TN"), Some("english"));
        assert_eq!(p("Mexico City, Mexico"), Some("spanish"));
        assert_eq!(p("Paris, France"), Some("french"));
        assert_eq!(p("Hamburg"), Some("german"));
        assert_eq!(p("Intergalactic"), None);
        // A two-letter code only counts as the last word.
        assert_eq!(p("La Paz"), None);
        let s = |t| language_of_script(t).map(|i| LANGUAGES[i as usize]);
        assert_eq!(s("ありがとう"), Some("japanese"));
        assert_eq!(s("사랑해"), Some("korean"));
        assert_eq!(s("月亮代表我的心"), Some("chinese"));
        assert_eq!(s("Кино"), Some("russian"));
        assert_eq!(s("Never Gonna Give You Up"), None);
    }
}
