//! Demo data that looks like a real country's cinemas: five Indian cities, ten theatres (IMAX
//! multiplexes, neighbourhood multiplexes and two old single-screen picture palaces), screens with
//! different seat maps (IMAX halls, recliner lounges, 4DX, balcony and stalls), thirty movies in
//! eight languages and a week of shows whose prices rise for IMAX, 3D and weekend evenings.
//!
//! Everything except the ids (fresh UUIDv7s) is deterministic: the data comes from the tables
//! below, and any variety (show times, which movie plays where) is derived from indices. Release
//! dates and show dates are relative to the `today` given to [`demo_catalog`].

use chrono::{Datelike, Days, NaiveDate, TimeDelta, TimeZone, Weekday};
use chrono_tz::Asia::Kolkata;

use crate::domain::model::*;

/// The time zone of every demo city.
const TIME_ZONE: &str = "Asia/Kolkata";
/// The country of every demo city.
const COUNTRY: &str = "IN";
/// The currency of every price.
const CURRENCY: &str = "INR";
/// Days with shows, starting today.
const DAYS: usize = 7;
/// Most shows a screen has in a day.
const MAX_SHOWS_PER_DAY: usize = 5;
/// Earliest first show, minutes after local midnight (09:00).
const EARLIEST_FIRST_SHOW: u32 = 9 * 60;
/// Latest first show (10:30).
const LATEST_FIRST_SHOW: u32 = 10 * 60 + 30;
/// Earliest start aimed at for the last show (21:45); a day's target is up to 75 minutes later.
const LAST_SHOW_TARGET: u32 = 21 * 60 + 45;
/// Latest start of the last show (23:15).
const LATEST_LAST_SHOW: u32 = 23 * 60 + 15;
/// Least time between the end of a show and the start of the next on the same screen, minutes.
const TURNAROUND: u32 = 15;
/// Trailers, ads and interval added to a movie's runtime, minutes (before rounding up to 5).
const PADDING: u32 = 20;

/// Cities: name, region and the audio languages its theatres play.
#[rustfmt::skip]
const CITIES: [(&str, &str, &[&str]); 5] = [
    ("Mumbai", "Maharashtra", &["hi", "mr", "en"]),
    ("Bengaluru", "Karnataka", &["kn", "en", "hi", "ta", "te", "ml"]),
    ("Delhi", "Delhi", &["hi", "en"]),
    ("Hyderabad", "Telangana", &["te", "hi", "en", "ta", "ml"]),
    ("Kolkata", "West Bengal", &["bn", "hi", "en"]),
];

/// Text in the tables.
type Text = &'static str;
/// Formats in the tables.
type Formats = &'static [Format];

/// A theatre: index into [`CITIES`], name, address, amenities and its price level in percent.
type TheatreRow = (usize, Text, Text, &'static [Text], i64);

#[rustfmt::skip]
const THEATRES: [TheatreRow; 10] = [
    (0, "Starlight IMAX: Palladium Mills, Lower Parel",
     "4th Floor, Palladium Mills Compound, Senapati Bapat Marg, Lower Parel, Mumbai 400013",
     &["Parking", "Valet parking", "Food court", "Wheelchair access", "M-Ticket", "Recliners"], 115),
    (0, "Galaxy Multiplex: Infiniti Link Mall, Andheri West",
     "3rd Floor, Infiniti Link Mall, New Link Road, Andheri West, Mumbai 400053",
     &["Parking", "Food court", "Wheelchair access", "M-Ticket", "4DX"], 100),
    (1, "Starlight IMAX: Orion Gateway, Rajajinagar",
     "Orion Gateway Mall, Dr Rajkumar Road, Rajajinagar, Bengaluru 560055",
     &["Parking", "Food court", "Wheelchair access", "M-Ticket", "Recliners", "Insignia lounge"], 110),
    (1, "Galaxy Multiplex: Forum Arcade, Koramangala",
     "Forum Arcade, 21 Hosur Road, Koramangala, Bengaluru 560095",
     &["Parking", "Food court", "M-Ticket", "Recliners"], 100),
    (2, "Starlight IMAX: Select Square, Saket",
     "2nd Floor, Select Square Mall, Press Enclave Marg, Saket, New Delhi 110017",
     &["Parking", "Food court", "Wheelchair access", "M-Ticket", "Recliners", "4DX"], 115),
    (2, "Galaxy Multiplex: Connaught Place",
     "N-Block, Outer Circle, Connaught Place, New Delhi 110001",
     &["Food court", "Wheelchair access", "M-Ticket", "Metro nearby"], 105),
    (3, "Starlight IMAX: Inorbit Plaza, Hitech City",
     "Inorbit Plaza, Mindspace Road, Hitech City, Hyderabad 500081",
     &["Parking", "Food court", "Wheelchair access", "M-Ticket", "Recliners", "Insignia lounge"], 105),
    (3, "Sarojini 70MM: RTC X Roads",
     "RTC X Roads, Chikkadpally, Hyderabad 500020",
     &["Parking", "M-Ticket", "Snack bar", "Dolby Atmos"], 70),
    (4, "Starlight Cinemas: Lake Mall, Rashbehari Avenue",
     "Lake Mall, 104 Rashbehari Avenue, Kalighat, Kolkata 700029",
     &["Parking", "Food court", "Wheelchair access", "M-Ticket", "Recliners"], 95),
    (4, "Roxy Picture Palace: Esplanade",
     "12 Jawaharlal Nehru Road, Esplanade, Kolkata 700013",
     &["M-Ticket", "Snack bar", "Wheelchair access", "Heritage building"], 70),
];

/// Seat categories, most expensive first: code, display name and base price in rupees.
const CATEGORIES: [(&str, &str, i64); 5] = [
    ("RECLINER", "Recliner", 600),
    ("PRIME", "Prime", 300),
    ("BALCONY", "Balcony", 260),
    ("CLASSIC", "Classic", 200),
    ("STALLS", "Stalls", 150),
];

/// A band of identical rows: category code, number of rows, the places of each row from left to
/// right (a positive number is that many seats, a negative one an aisle that many seats wide),
/// and how many wheelchair spaces (0, 1 or 2) the band's first row has, at its ends, each with a
/// companion seat beside it. Bands are listed from the back of the auditorium.
type Band = (Text, u32, &'static [i32], u32);

/// A big IMAX hall: recliners at the back, an accessible cross-aisle row, classic rows in front.
const IMAX_GRAND: &[Band] = &[
    ("RECLINER", 2, &[-3, 6, -2, 12, -2, 6, -3], 0),
    ("PRIME", 1, &[8, -2, 20, -2, 8], 2),
    ("PRIME", 9, &[8, -2, 20, -2, 8], 0),
    ("CLASSIC", 4, &[-1, 7, -2, 20, -2, 7, -1], 0),
];
/// A stadium IMAX hall with continental rows split by a centre aisle.
const IMAX_STADIUM: &[Band] = &[
    ("RECLINER", 3, &[-2, 10, -2, 10, -2], 0),
    ("PRIME", 1, &[-1, 14, -2, 14, -1], 2),
    ("PRIME", 7, &[-1, 14, -2, 14, -1], 0),
    ("CLASSIC", 3, &[-3, 12, -2, 12, -3], 0),
];
/// A main auditorium with two aisles and wheelchair spaces in the front row.
const LARGE: &[Band] = &[
    ("RECLINER", 2, &[-2, 4, -2, 8, -2, 4, -2], 0),
    ("PRIME", 8, &[5, -2, 14, -2, 5], 0),
    ("CLASSIC", 2, &[5, -2, 14, -2, 5], 0),
    ("CLASSIC", 1, &[4, -3, 14, -3, 4], 2),
];
/// A mid-sized auditorium with one recliner row and a wheelchair space by the entrance.
const MEDIUM: &[Band] = &[
    ("RECLINER", 1, &[-1, 6, -2, 6, -1], 0),
    ("PRIME", 1, &[4, -1, 12, -1, 4], 1),
    ("PRIME", 6, &[4, -1, 12, -1, 4], 0),
    ("CLASSIC", 3, &[4, -1, 12, -1, 4], 0),
];
/// A mid-sized auditorium with one aisle off centre and no recliners.
const SIDE_AISLE: &[Band] = &[
    ("PRIME", 7, &[14, -2, 6], 0),
    ("CLASSIC", 2, &[14, -2, 6], 0),
    ("CLASSIC", 1, &[-2, 12, -2, 6], 1),
];
/// A small auditorium with a narrower front row.
const SMALL: &[Band] = &[
    ("RECLINER", 1, &[-1, 4, -2, 4, -1], 0),
    ("PRIME", 6, &[8, -2, 8], 0),
    ("CLASSIC", 2, &[7, -2, 7], 0),
    ("CLASSIC", 1, &[-2, 5, -2, 7], 1),
];
/// A luxury lounge of couple recliners.
const GOLD: &[Band] = &[
    ("RECLINER", 3, &[2, -1, 2, -2, 2, -1, 2], 0),
    ("RECLINER", 1, &[2, -1, 2, -2, 2, -1, 2], 1),
];
/// A luxury lounge of a few wide recliners.
const INSIGNIA: &[Band] = &[
    ("RECLINER", 3, &[-1, 3, -3, 3, -1], 0),
    ("RECLINER", 1, &[-1, 3, -3, 3, -1], 1),
];
/// A 4DX hall: motion seats in blocks of four, the accessible row at the back.
const FOUR_DX: &[Band] = &[
    ("PRIME", 1, &[4, -1, 4, -2, 4, -1, 4], 1),
    ("PRIME", 5, &[4, -1, 4, -2, 4, -1, 4], 0),
    ("CLASSIC", 2, &[-5, 4, -2, 4, -5], 0),
];
/// An old single-screen hall: a balcony over the stalls, step-free access at the stalls entry.
const PICTURE_PALACE: &[Band] = &[
    ("BALCONY", 8, &[-2, 10, -2, 16, -2, 10, -2], 0),
    ("STALLS", 1, &[10, -2, 18, -2, 10], 2),
    ("STALLS", 13, &[10, -2, 18, -2, 10], 0),
];

/// What an IMAX hall projects.
const IMAX_SCREEN: Formats = &[Format::Imax2d, Format::Imax3d];
/// What a 4DX hall shows.
const FOUR_DX_SCREEN: Formats = &[Format::FourDx];
/// A 2D-only screen, or a movie released only in 2D.
const PLAIN: Formats = &[Format::TwoD];
/// A screen or movie with 3D as well as 2D.
const THREE_D: Formats = &[Format::TwoD, Format::ThreeD];
/// A blockbuster filmed for IMAX, also released in 4DX.
const IMAX: Formats = &[Format::TwoD, Format::Imax2d, Format::FourDx];
/// A blockbuster in every format.
const IMAX_3D: Formats = &[
    Format::TwoD,
    Format::ThreeD,
    Format::Imax2d,
    Format::Imax3d,
    Format::FourDx,
];

/// A screen: index into [`THEATRES`], name, layout, formats, rows added to (or taken from) the
/// layout's largest band so that no two screens are alike, and a price level in percent.
type ScreenRow = (usize, Text, &'static [Band], Formats, i32, i64);

#[rustfmt::skip]
const SCREENS: [ScreenRow; 28] = [
    (0, "IMAX", IMAX_GRAND, IMAX_SCREEN, 0, 100),
    (0, "Audi 2", LARGE, THREE_D, 0, 100),
    (0, "Audi 3", MEDIUM, PLAIN, 0, 100),
    (0, "Gold", GOLD, THREE_D, 0, 140),
    (1, "Screen 1", LARGE, THREE_D, 1, 100),
    (1, "Screen 2", SMALL, PLAIN, 0, 100),
    (1, "4DX", FOUR_DX, FOUR_DX_SCREEN, 0, 100),
    (2, "IMAX", IMAX_STADIUM, IMAX_SCREEN, 0, 100),
    (2, "Audi 2", MEDIUM, THREE_D, 1, 100),
    (2, "Audi 3", SIDE_AISLE, PLAIN, 0, 100),
    (2, "Insignia", INSIGNIA, THREE_D, 0, 150),
    (3, "Screen 1", LARGE, THREE_D, -1, 100),
    (3, "Screen 2", SIDE_AISLE, PLAIN, 1, 100),
    (3, "Screen 3", SMALL, PLAIN, 1, 100),
    (4, "IMAX", IMAX_GRAND, IMAX_SCREEN, 2, 100),
    (4, "Audi 2", LARGE, THREE_D, 2, 100),
    (4, "Gold", GOLD, PLAIN, 1, 140),
    (4, "4DX", FOUR_DX, FOUR_DX_SCREEN, 1, 100),
    (5, "Screen 1", MEDIUM, THREE_D, -1, 100),
    (5, "Screen 2", SMALL, PLAIN, -1, 100),
    (6, "IMAX", IMAX_STADIUM, IMAX_SCREEN, 1, 100),
    (6, "Audi 2", SIDE_AISLE, THREE_D, -1, 100),
    (6, "Insignia", INSIGNIA, PLAIN, 1, 150),
    (7, "Main Screen", PICTURE_PALACE, THREE_D, 0, 100),
    (8, "Screen 1", MEDIUM, THREE_D, 2, 100),
    (8, "Screen 2", SMALL, PLAIN, 2, 100),
    (8, "Gold", GOLD, THREE_D, -1, 140),
    (9, "Main Screen", PICTURE_PALACE, PLAIN, -2, 100),
];

/// A movie: title, original language, genres, runtime in minutes, certification, release week
/// (0 is the last Friday before today, 1 the Friday after it, -1 the one before), formats,
/// dubbed languages, cast, directors and synopsis. Lists are separated by ", ".
type MovieRow = (
    Text,
    Text,
    Text,
    u32,
    Text,
    i64,
    Formats,
    Text,
    Text,
    Text,
    Text,
);

#[rustfmt::skip]
const MOVIES: [MovieRow; 30] = [
    ("Sher-e-Sarhad", "hi", "Action, Drama", 158, "UA13+", 0, IMAX, "ta te",
     "Arjun Malhotra, Kiara Sethi, Vikram Rathore", "Kabir Anand",
     "A disgraced army officer returns to the border village he once guarded when a smuggling ring moves in again."),
    ("Dil Ki Dastak", "hi", "Romance, Comedy", 132, "UA7+", -2, PLAIN, "",
     "Ranveer Kohli, Ananya Bajaj, Paresh Mehta", "Shruti Nair",
     "Two rival wedding planners in Jaipur are hired for the same wedding: their own siblings'."),
    ("Chakravyuh: The Inside Job", "hi", "Thriller, Crime", 141, "UA16+", -1, PLAIN, "",
     "Nawaz Qureshi, Tara Deshmukh", "Anurag Bhatia",
     "A forensic accountant finds that the bank heist she is investigating was planned inside her own department."),
    ("Pyaare Papa", "hi", "Family, Comedy", 124, "U", -4, PLAIN, "",
     "Boman Sethna, Rhea Kapoor, Aarav Gill", "Rajat Sood",
     "A retired cricket umpire moves in with his son's family in Pune and takes over the household, one rule at a time."),
    ("Haveli No. 13", "hi", "Horror, Comedy", 138, "UA13+", -3, THREE_D, "",
     "Kartik Sinha, Mira Chaddha, Deepak Dobhal", "Prakash Iyer",
     "A ghost-hunting YouTuber rents a crumbling Lucknow haveli for one night and finds its residents unwilling to leave."),
    ("Udaan 1983", "hi", "Biography, Drama", 164, "U", -6, PLAIN, "",
     "Siddharth Rana, Neha Dhawan, Om Prakash Sahni", "Ashutosh Ghai",
     "The story of a Ludhiana mechanic who built a working aeroplane in his backyard and flew it over the Sutlej."),
    ("Agent Trishul", "hi", "Action, Thriller", 149, "UA13+", 1, IMAX, "te ta",
     "Hrithik Verma, Disha Malik, Jimmy Sheikh", "Siddharth Rao",
     "An intelligence officer goes rogue to stop a satellite hijack that could black out half the subcontinent."),
    ("Orbital Drift", "en", "Sci-Fi, Thriller", 151, "UA13+", -2, IMAX_3D, "hi ta te",
     "Maya Calloway, Idris Okafor, Lena Varga", "Tom Hallstrom",
     "When a mining station's orbit starts to decay, its crew of five has ninety hours to decide who gets the only escape pod."),
    ("The Last Lighthouse", "en", "Drama, Romance", 118, "UA7+", -5, PLAIN, "",
     "Greta Lindqvist, Owen Marsh", "Clara Benedetti",
     "A widowed lighthouse keeper on the Scottish coast takes in a sailor who cannot remember how he washed ashore."),
    ("Paws & Claws: Jungle Rescue", "en", "Animation, Family, Comedy", 98, "U", -1, THREE_D, "hi",
     "Jack Benning, Sofia Alvarez, Ray Tanaka", "Mia Feldman, Oscar Pratt",
     "A pampered city cat and a nervous street dog team up to take a lost tiger cub home to the Sundarbans."),
    ("Kingdom of Ash", "en", "Fantasy, Action", 172, "UA13+", -4, IMAX_3D, "hi ta te",
     "Henry Caldwell, Amara Nwosu, Felix Durand", "Rafael Ortiz",
     "The exiled heir to a fallen kingdom must unite its feuding clans before a dragon cult burns what is left."),
    ("Night Shift", "en", "Horror, Thriller", 104, "A", 0, PLAIN, "",
     "Chloe Sanders, Marcus Reed", "Devon Hale",
     "A nurse alone on the night ward realises that the patient in bed nine died three days ago."),
    ("Kaalan", "ta", "Action, Crime", 165, "UA16+", -1, IMAX, "te hi",
     "Ilango Sundaram, Meenakshi Rao, Bala Murugan", "Senthil Nathan",
     "A small-time goon from Madurai becomes the most wanted man in Tamil Nadu after he refuses one last job."),
    ("Kadhal Kanmani", "ta", "Romance, Drama", 142, "U", -3, PLAIN, "",
     "Ashwin Kumar, Divya Lakshmi", "Gautham Ramesh",
     "Two strangers meet on the Chennai to Mysuru express and talk through one long monsoon night."),
    ("Nizhal", "ta", "Thriller, Crime", 128, "UA13+", -5, PLAIN, "",
     "Arvind Selvam, Keerthana Vel", "Lokesh Arumugam",
     "A night-duty traffic constable in Coimbatore sees the same car at the same signal every night, with a different driver."),
    ("Mappillai Mela", "ta", "Comedy, Family", 136, "U", 0, PLAIN, "",
     "Yogi Perumal, Saranya Devi, Mano Sekar", "Sundar Rajan",
     "A reluctant groom's whole village turns up to help him impress his fiancee's very modern family in Chennai."),
    ("Rudhira: The Bloodline", "te", "Action, Fantasy, Drama", 178, "UA13+", -3, IMAX_3D, "hi ta ml kn",
     "Vikranth Reddy, Samyuktha Rao, Kota Venkat", "Srinivasa Chakravarthy",
     "Brothers separated at birth meet on opposite sides of a war for a Deccan kingdom, bound by an oath neither remembers."),
    ("Inti Number 42", "te", "Comedy, Family", 131, "U", -2, PLAIN, "",
     "Naveen Kumar, Harika Devi, Subbaraju Venkat", "Vamsi Krishna Reddy",
     "Three generations of a joint family in Vijayawada go to war over who gets the terrace room."),
    ("Agnipatham", "te", "Action, Thriller", 155, "UA16+", 0, THREE_D, "hi",
     "Sai Dharam Varma, Nikitha Reddy", "Anil Vemuri",
     "An honest transport officer takes on the sand-mining mafia that controls every road out of his district."),
    ("Maa Oori Cinema", "te", "Comedy, Drama", 122, "U", -6, PLAIN, "",
     "Rahul Ramesh, Anusha Chowdary", "Mahesh Dasari",
     "When a village's only cinema hall is sold, its projectionist and a gang of schoolchildren plan one last screening."),
    ("Mazhavil Express", "ml", "Comedy, Drama", 127, "U", -4, PLAIN, "",
     "Basil Mathew, Nimisha Varghese, Jaffer Kutty", "Dileesh Kuriakose",
     "A bus conductor on the Kochi to Munnar route plays matchmaker for his passengers while dodging his mother's proposals."),
    ("Pathiraavu", "ml", "Thriller, Crime", 139, "UA16+", -1, PLAIN, "",
     "Fahad Rahman, Darshana Menon", "Jeethu Abraham",
     "A police surgeon reopens a closed drowning case in Alappuzha when the victim's sister brings him a voice note."),
    ("Aanakkatha", "ml", "Family, Drama", 118, "U", -2, PLAIN, "",
     "Indrans Pillai, Nila Joseph, Siddique Ali", "Blessy Thomas",
     "A retired mahout walks an ageing temple elephant two hundred kilometres home to the forest she was taken from."),
    ("Karavali", "kn", "Action, Drama", 160, "UA16+", -2, THREE_D, "hi te",
     "Rakshit Gowda, Rukmini Shetty, Achyuth Rao", "Prashanth Hegde",
     "A fisherman's son on the Udupi coast rises against the cartel that has taken the harbour and his family's boats."),
    ("Mane Munde Mara", "kn", "Comedy, Family", 126, "U", -5, PLAIN, "",
     "Pramod Kulkarni, Sahana Bhat, Ramesh Urs", "Nagaraj Somayaji",
     "A Bengaluru techie goes home to his Malnad village to sell the family house and is adopted by the neighbours instead."),
    ("Kappu Bilupu", "kn", "Thriller, Crime", 134, "UA13+", 0, PLAIN, "",
     "Dhananjay Shetty, Aditi Prabhu", "Mohan Narayan",
     "A wedding photographer in Mysuru spots something in the background of his pictures that someone will kill to hide."),
    ("Vaarsa", "mr", "Drama, Family", 135, "U", -3, PLAIN, "",
     "Sachin Kulkarni, Mrunal Joshi, Vikram Gaikwad", "Nagesh Patil",
     "Three estranged siblings return to their ancestral wada in Satara to divide an inheritance nobody can find."),
    ("Chal Ga Sakhe", "mr", "Comedy, Romance", 128, "UA7+", -1, PLAIN, "",
     "Omkar Bhosale, Gauri Deshpande, Suhas Pawar", "Ketan Mane",
     "A Pune rickshaw driver pretends to be a software engineer to impress the tenant of his cousin's flat."),
    ("Shesh Chithi", "bn", "Drama, Romance", 129, "UA7+", -4, PLAIN, "",
     "Ritabrata Basu, Sohini Dutta, Kaushik Mitra", "Subhro Lahiri",
     "A postman in north Kolkata finds a letter posted forty years ago and sets out to deliver it."),
    ("Pandal Rahasya", "bn", "Crime, Thriller, Family", 117, "UA7+", 0, PLAIN, "",
     "Chiranjit Roy, Ishani Ghosal, Rudranil Das", "Joydip Sarkar",
     "During Durga Puja an amateur sleuth and her nephew chase the thief who stole the goddess's crown from their pandal."),
];

/// Formats in the order a screen prefers to show them.
const FORMAT_PREFERENCE: [Format; 5] = [
    Format::Imax3d,
    Format::Imax2d,
    Format::FourDx,
    Format::ThreeD,
    Format::TwoD,
];

/// A version of a movie a city can play: index into [`MOVIES`] and audio language.
type Program = (usize, Text);

/// The demo catalog: shows on the 7 days starting at `today` (a date in the cities' time zone).
pub fn demo_catalog(today: NaiveDate) -> CatalogData {
    let cities: Vec<City> = CITIES
        .iter()
        .map(|&(name, region, _)| City {
            id: new_id(),
            name: name.to_string(),
            region: region.to_string(),
            country_code: COUNTRY.to_string(),
            time_zone: TIME_ZONE.to_string(),
            currency_code: CURRENCY.to_string(),
        })
        .collect();
    let theatres: Vec<Theatre> = THEATRES
        .iter()
        .map(|&(city, name, address, amenities, _)| Theatre {
            id: new_id(),
            city_id: cities[city].id.clone(),
            name: name.to_string(),
            address: address.to_string(),
            amenities: amenities.iter().map(|a| a.to_string()).collect(),
        })
        .collect();
    let screens: Vec<Screen> = SCREENS
        .iter()
        .map(|&(theatre, name, bands, formats, rows_delta, _)| Screen {
            id: new_id(),
            theatre_id: theatres[theatre].id.clone(),
            name: name.to_string(),
            formats: formats.to_vec(),
            layout: build_layout(bands, rows_delta),
        })
        .collect();
    let releases: Vec<NaiveDate> = MOVIES.iter().map(|m| release_date(today, m.5)).collect();
    let movies = (MOVIES.iter().zip(&releases))
        .map(|(row, released)| build_movie(row, *released))
        .collect();
    let mut data = CatalogData {
        cities,
        movies,
        theatres,
        screens,
        shows: Vec::new(),
    };
    data.shows = schedule(today, &data, &releases);
    data
}

/// A week of shows on every screen of `data`, whose movies were released on `releases`.
///
/// Each city walks round its list of programs, so that every screen gets a mix of movies and
/// every movie gets screens; a screen skips programs it cannot project or that are not out yet.
fn schedule(today: NaiveDate, data: &CatalogData, releases: &[NaiveDate]) -> Vec<Show> {
    let programs: Vec<Vec<Program>> = CITIES.iter().map(|c| city_programs(c.2)).collect();
    let mut cursors = vec![0; CITIES.len()];
    let mut shows = Vec::new();
    for day in 0..DAYS {
        let date = today + Days::new(day as u64);
        let weekend = matches!(date.weekday(), Weekday::Fri | Weekday::Sat | Weekday::Sun);
        for (s, (screen, row)) in data.screens.iter().zip(&SCREENS).enumerate() {
            let &(t, _, _, formats, _, screen_level) = row;
            let (c, .., theatre_level) = THEATRES[t];
            let mut picks = Vec::new();
            for slot in 0..MAX_SHOWS_PER_DAY {
                let choose = |m: usize| {
                    let format = playable(MOVIES[m].6, formats, slot)?;
                    (releases[m] <= date).then_some(format)
                };
                picks.extend(next_program(&programs[c], &mut cursors[c], choose));
            }
            let lengths: Vec<u32> = (0..)
                .zip(&picks)
                .map(|(k, ((m, _), _))| show_minutes(MOVIES[*m].3, s + day + k))
                .collect();
            // Spread first and last shows over the allowed windows, differently for each screen.
            let first = EARLIEST_FIRST_SHOW + 5 * ((s * 5 + day * 2) % 19) as u32;
            let last = LAST_SHOW_TARGET + 15 * ((s + day) % 6) as u32;
            let starts = day_plan(first, last, &lengths);
            let level = theatre_level * screen_level / 100;
            for (((m, language), format), (length, start)) in
                picks.into_iter().zip(lengths.into_iter().zip(starts))
            {
                let start_at = local_to_unix(date, start);
                shows.push(Show {
                    id: new_id(),
                    movie_id: data.movies[m].id.clone(),
                    theatre_id: screen.theatre_id.clone(),
                    screen_id: screen.id.clone(),
                    city_id: data.cities[c].id.clone(),
                    start_at,
                    end_at: start_at + i64::from(length) * 60,
                    language: language.to_string(),
                    format,
                    prices: show_prices(&screen.layout, level, format, weekend, start),
                    state: ShowState::Scheduled,
                    cancel_reason: String::new(),
                });
            }
        }
    }
    shows
}

/// A fresh id.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The label of the row `index` rows from the back: `A` to `Z`, then `AA`, `AB` and so on.
fn row_label(index: usize) -> String {
    let letter = |n: usize| char::from(b'A' + (n % 26) as u8);
    if index < 26 {
        letter(index).to_string()
    } else {
        format!("{}{}", letter(index / 26 - 1), letter(index))
    }
}

/// A layout from its bands, with `rows_delta` rows added to its largest band (at least one row
/// remains). Its categories are those the bands use, most expensive first.
fn build_layout(bands: &[Band], rows_delta: i32) -> SeatLayout {
    let largest = (0..bands.len()).max_by_key(|&b| bands[b].1);
    let mut rows = Vec::new();
    for (b, &(category, count, places, wheelchairs)) in bands.iter().enumerate() {
        let count = if Some(b) == largest {
            count.saturating_add_signed(rows_delta).max(1)
        } else {
            count
        };
        for r in 0..count {
            let wheelchairs = if r == 0 { wheelchairs } else { 0 };
            rows.push(build_row(
                row_label(rows.len()),
                category,
                places,
                wheelchairs,
            ));
        }
    }
    let categories = CATEGORIES
        .iter()
        .filter(|(code, ..)| bands.iter().any(|b| b.0 == *code))
        .map(|&(code, name, _)| SeatCategory {
            code: code.to_string(),
            name: name.to_string(),
        })
        .collect();
    SeatLayout { categories, rows }
}

/// A row: seats numbered from 1 left to right across aisles. One wheelchair space takes seat 1
/// (its companion seat 2); a second one takes the last seat (its companion the one before).
fn build_row(label: String, category: &str, places: &[i32], wheelchairs: u32) -> SeatRow {
    let seats: u32 = places
        .iter()
        .filter(|&&p| p > 0)
        .map(|p| p.unsigned_abs())
        .sum();
    let kind = |number: u32| match number {
        1 if wheelchairs >= 1 => SeatKind::Wheelchair,
        2 if wheelchairs >= 1 => SeatKind::Companion,
        n if wheelchairs >= 2 && n == seats => SeatKind::Wheelchair,
        n if wheelchairs >= 2 && n + 1 == seats => SeatKind::Companion,
        _ => SeatKind::Standard,
    };
    let mut items = Vec::new();
    let mut number = 0;
    for &place in places {
        if place < 0 {
            items.push(RowItem::Gap {
                width: place.unsigned_abs(),
            });
        }
        for _ in 0..place.max(0) {
            number += 1;
            items.push(RowItem::Seat {
                number,
                kind: kind(number),
            });
        }
    }
    SeatRow {
        label,
        category_code: category.to_string(),
        items,
    }
}

/// The release date of a movie of release week `week`: movies open on Fridays, week 0 being the
/// last Friday before `today` and week 1 the one in the coming seven days.
fn release_date(today: NaiveDate, week: i64) -> NaiveDate {
    let since_friday = (i64::from(today.weekday().num_days_from_monday()) + 3) % 7;
    let last_friday = today - TimeDelta::days(if since_friday == 0 { 7 } else { since_friday });
    last_friday + TimeDelta::days(7 * week)
}

/// A movie from its table row.
fn build_movie(row: &MovieRow, released: NaiveDate) -> Movie {
    let (title, language, genres, runtime, certification, _, _, _, cast, directors, synopsis) =
        *row;
    Movie {
        id: new_id(),
        title: title.to_string(),
        synopsis: synopsis.to_string(),
        original_language: language.to_string(),
        genres: split_list(genres),
        runtime_minutes: runtime,
        certification: certification.to_string(),
        release_date: released.format("%Y-%m-%d").to_string(),
        cast: split_list(cast),
        directors: split_list(directors),
    }
}

/// The entries of a ", "-separated list.
fn split_list(list: &str) -> Vec<String> {
    list.split(", ").map(str::to_string).collect()
}

/// The programs a city plays, in the order its screens take them. Every version in the city's
/// languages has a weight: 1, plus 1 for the original version of a blockbuster (IMAX) and of a
/// new release, plus 1 in the city's own language (the first of its languages). The list is
/// every version with weight at least 1, then those with at least 2, and so on, so that heavier
/// versions get more shows, spread over the day.
fn city_programs(languages: &[&str]) -> Vec<Program> {
    let mut weighted = Vec::new();
    for (m, movie) in MOVIES.iter().enumerate() {
        let versions = std::iter::once(movie.1).chain(movie.7.split_whitespace());
        for (v, language) in versions.enumerate() {
            if languages.contains(&language) {
                let original = v == 0;
                let weight = 1
                    + usize::from(original && movie.6.contains(&Format::Imax2d))
                    + usize::from(original && movie.5 >= 0)
                    + usize::from(language == languages[0]);
                weighted.push(((m, language), weight));
            }
        }
    }
    (1..=4)
        .flat_map(|round| weighted.iter().filter(move |(_, w)| *w >= round))
        .map(|(program, _)| *program)
        .collect()
}

/// The next program from `cursor` on (wrapping round) for which `choose` gives a value, which it
/// returns with the program; the cursor moves past it.
fn next_program<T>(
    list: &[Program],
    cursor: &mut usize,
    choose: impl Fn(usize) -> Option<T>,
) -> Option<(Program, T)> {
    let (i, value) = (0..list.len())
        .map(|k| (*cursor + k) % list.len())
        .find_map(|i| choose(list[i].0).map(|value| (i, value)))?;
    *cursor = i + 1;
    Some((list[i], value))
}

/// The format a movie released in `movie` formats plays in on a screen with `screen` formats, if
/// any: the screen's best, except that a 3D screen plays 3D movies in 2D at every other slot.
fn playable(movie: &[Format], screen: &[Format], slot: usize) -> Option<Format> {
    let mut both = FORMAT_PREFERENCE
        .into_iter()
        .filter(|f| movie.contains(f) && screen.contains(f));
    let best = both.next()?;
    match both.next() {
        Some(Format::TwoD) if best == Format::ThreeD && slot % 2 == 1 => Some(Format::TwoD),
        _ => Some(best),
    }
}

/// How long a show of a movie of `runtime` minutes takes the screen: the runtime plus
/// [`PADDING`], rounded up to 5 minutes, and 5 more for every other `variant`.
fn show_minutes(runtime: u32, variant: usize) -> u32 {
    (runtime + PADDING).div_ceil(5) * 5 + if variant % 2 == 1 { 5 } else { 0 }
}

/// Start times, minutes after local midnight, for shows of the given `lengths` on one screen in
/// one day: as many as fit with the last starting by [`LATEST_LAST_SHOW`] (at most five), the
/// first at `first` or up to [`LATEST_FIRST_SHOW`], the last at `last` unless the shows need
/// longer, and the spare time shared out between shows, on a 5-minute grid.
fn day_plan(first: u32, last: u32, lengths: &[u32]) -> Vec<u32> {
    let tight = |n: usize| -> u32 { lengths[..n].iter().map(|l| l + TURNAROUND).sum() };
    let mut n = lengths.len().min(MAX_SHOWS_PER_DAY);
    while n > 1 && first + tight(n - 1) > LATEST_LAST_SHOW {
        n -= 1;
    }
    if n <= 1 {
        return vec![first; n];
    }
    let slack = last.saturating_sub(first + tight(n - 1));
    let delay = (slack / 10 * 5).min(LATEST_FIRST_SHOW.saturating_sub(first));
    let units = (slack - delay) / 5;
    let gaps = (n - 1) as u32;
    let mut start = first + delay;
    let mut starts = vec![start];
    for (i, length) in (0..gaps).zip(lengths) {
        let extra = units / gaps + u32::from(i < units % gaps);
        start += length + TURNAROUND + 5 * extra;
        starts.push(start);
    }
    starts
}

/// Unix seconds of `minute` minutes after midnight on `date` in India.
fn local_to_unix(date: NaiveDate, minute: u32) -> i64 {
    let local = date
        .and_hms_opt(minute / 60, minute % 60, 0)
        .expect("shows start before midnight");
    Kolkata
        .from_local_datetime(&local)
        .single()
        .expect("India has no daylight saving time")
        .timestamp()
}

/// One price per category of `layout`: the category's base price scaled by the `level` of the
/// theatre and screen (percent), the format, and the time (cheaper mornings, dearer weekend
/// evenings), rounded to 10 rupees.
fn show_prices(
    layout: &SeatLayout,
    level: i64,
    format: Format,
    weekend: bool,
    start: u32,
) -> Vec<ShowPrice> {
    let format_pct = match format {
        Format::TwoD => 100,
        Format::ThreeD => 115,
        Format::Imax2d => 140,
        Format::Imax3d => 155,
        Format::FourDx => 160,
    };
    let time_pct = match start {
        s if s < 12 * 60 => 85,
        s if weekend && s >= 17 * 60 => 125,
        _ => 100,
    };
    CATEGORIES
        .iter()
        .filter(|(code, ..)| layout.categories.iter().any(|c| c.code == *code))
        .map(|&(code, _, rupees)| {
            // Rupees times 10^6 (three percentages), to the nearest ten rupees.
            let tens = (rupees * level * format_pct * time_pct + 5_000_000) / 10_000_000;
            ShowPrice {
                category_code: code.to_string(),
                price: Money {
                    currency: CURRENCY.to_string(),
                    amount_minor: tens * 10 * 100,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use chrono::Timelike;

    use super::*;
    use crate::domain::rules::{self, MovieFields, NewCity, TheatreFields};

    fn thursday() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 12).expect("a valid date")
    }

    /// Local date and minute of the day of Unix seconds.
    fn local(at: i64) -> (NaiveDate, u32) {
        let t = Kolkata.timestamp_opt(at, 0).single().expect("a valid time");
        (t.date_naive(), t.hour() * 60 + t.minute())
    }

    #[test]
    fn everything_passes_the_rules() {
        let data = demo_catalog(thursday());
        assert!(data.cities.len() >= 3);
        assert!(data.theatres.len() >= 8);
        assert!(data.screens.len() >= 20);
        assert_eq!(data.movies.len(), 30);
        for c in &data.cities {
            let city = NewCity {
                name: c.name.clone(),
                region: c.region.clone(),
                country_code: c.country_code.clone(),
                time_zone: c.time_zone.clone(),
                currency_code: c.currency_code.clone(),
            };
            let r = rules::check_city(&city);
            assert!(r.is_ok(), "{}: {r:?}", c.name);
        }
        for m in &data.movies {
            let fields = MovieFields {
                title: m.title.clone(),
                synopsis: m.synopsis.clone(),
                original_language: m.original_language.clone(),
                genres: m.genres.clone(),
                runtime_minutes: m.runtime_minutes,
                certification: m.certification.clone(),
                release_date: m.release_date.clone(),
                cast: m.cast.clone(),
                directors: m.directors.clone(),
            };
            let r = rules::check_movie(&fields);
            assert!(r.is_ok(), "{}: {r:?}", m.title);
            assert!((95..=180).contains(&m.runtime_minutes), "{}", m.title);
            assert!(["U", "UA7+", "UA13+", "UA16+", "A"].contains(&m.certification.as_str()));
        }
        for t in &data.theatres {
            let fields = TheatreFields {
                name: t.name.clone(),
                address: t.address.clone(),
                amenities: t.amenities.clone(),
            };
            let r = rules::check_theatre(&fields);
            assert!(r.is_ok(), "{}: {r:?}", t.name);
        }
        for s in &data.screens {
            let r = rules::check_screen_fields(&s.name, &s.formats);
            assert!(r.is_ok(), "{}: {r:?}", s.name);
            let r = rules::check_layout(&s.layout);
            assert!(r.is_ok(), "{}: {r:?}", s.name);
        }
        let screens: HashMap<_, _> = data.screens.iter().map(|s| (&s.id, s)).collect();
        for show in &data.shows {
            let layout = &screens[&show.screen_id].layout;
            let r = rules::check_prices("prices", &show.prices, layout, "INR");
            assert!(r.is_ok(), "{r:?}");
            let codes: Vec<_> = show.prices.iter().map(|p| &p.category_code).collect();
            let expected: Vec<_> = layout.categories.iter().map(|c| &c.code).collect();
            assert_eq!(codes, expected, "priced in layout order");
            let amounts: Vec<_> = show.prices.iter().map(|p| p.price.amount_minor).collect();
            assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "dearest first");
        }
    }

    #[test]
    fn layouts_differ_and_are_accessible() {
        let data = demo_catalog(thursday());
        for (i, s) in data.screens.iter().enumerate() {
            assert!(
                !data.screens[..i].iter().any(|o| o.layout == s.layout),
                "{} repeats a layout",
                s.name
            );
            for row in &s.layout.rows {
                let numbers: Vec<u32> = row
                    .items
                    .iter()
                    .filter_map(|item| match item {
                        RowItem::Seat { number, .. } => Some(*number),
                        RowItem::Gap { .. } => None,
                    })
                    .collect();
                assert!(numbers.iter().copied().eq(1..=numbers.len() as u32));
                for (i, item) in row.items.iter().enumerate() {
                    if let RowItem::Seat {
                        kind: SeatKind::Wheelchair,
                        ..
                    } = item
                    {
                        let beside = [i.wrapping_sub(1), i + 1].map(|j| row.items.get(j));
                        let companion = beside.iter().any(|b| {
                            matches!(
                                b,
                                Some(RowItem::Seat {
                                    kind: SeatKind::Companion,
                                    ..
                                })
                            )
                        });
                        assert!(companion, "{} row {}", s.name, row.label);
                    }
                }
            }
        }
        let wheelchairs = (data.screens.iter())
            .flat_map(|s| s.layout.seats())
            .filter(|(_, _, kind)| *kind == SeatKind::Wheelchair)
            .count();
        assert!(wheelchairs >= 1);
        assert!(
            data.screens
                .iter()
                .any(|s| s.formats.contains(&Format::Imax3d))
        );
        assert!(
            data.screens
                .iter()
                .any(|s| s.formats.contains(&Format::FourDx))
        );
    }

    #[test]
    fn shows_fill_a_realistic_week() {
        let today = thursday();
        let data = demo_catalog(today);
        let movies: HashMap<_, _> = data.movies.iter().map(|m| (&m.id, m)).collect();
        let screens: HashMap<_, _> = data.screens.iter().map(|s| (&s.id, s)).collect();
        let theatres: HashMap<_, _> = data.theatres.iter().map(|t| (&t.id, t)).collect();
        let cities: HashSet<_> = data.cities.iter().map(|c| &c.id).collect();
        let mut by_screen_day: HashMap<_, Vec<&Show>> = HashMap::new();
        for show in &data.shows {
            let movie = movies[&show.movie_id];
            let screen = screens[&show.screen_id];
            assert_eq!(screen.theatre_id, show.theatre_id);
            assert_eq!(theatres[&show.theatre_id].city_id, show.city_id);
            assert!(cities.contains(&show.city_id));
            assert!(screen.formats.contains(&show.format));
            assert_eq!(show.state, ShowState::Scheduled);
            assert!(show.cancel_reason.is_empty());
            let runtime = i64::from(movie.runtime_minutes) * 60;
            let padding = show.end_at - show.start_at - runtime;
            assert!((20 * 60..=30 * 60).contains(&padding), "{padding}");
            let r = rules::check_show_times(show.start_at, show.end_at, movie.runtime_minutes, 0);
            assert!(r.is_ok(), "{r:?}");
            let (date, _) = local(show.start_at);
            assert!(date.format("%Y-%m-%d").to_string() >= movie.release_date);
            let day = by_screen_day.entry((&show.screen_id, date)).or_default();
            day.push(show);
        }
        assert_eq!(by_screen_day.len(), data.screens.len() * DAYS);
        for day in 0..DAYS {
            let date = today + Days::new(day as u64);
            for screen in &data.screens {
                let mut shows = by_screen_day[&(&screen.id, date)].clone();
                shows.sort_by_key(|s| s.start_at);
                assert!((4..=5).contains(&shows.len()), "{} {date}", screen.name);
                let first = local(shows[0].start_at).1;
                let last = local(shows[shows.len() - 1].start_at).1;
                assert!((9 * 60..=10 * 60 + 30).contains(&first), "{first}");
                assert!((21 * 60 + 30..=23 * 60 + 15).contains(&last), "{last}");
            }
        }
        let mut shows: Vec<_> = data.shows.iter().collect();
        shows.sort_by_key(|s| (&s.screen_id, s.start_at));
        for w in shows.windows(2) {
            if w[0].screen_id == w[1].screen_id {
                assert!(w[1].start_at >= w[0].end_at + 15 * 60, "overlap");
            }
        }
    }

    #[test]
    fn every_movie_plays_whatever_the_weekday() {
        for offset in 0..7 {
            let data = demo_catalog(thursday() + Days::new(offset));
            let playing: HashSet<_> = data.shows.iter().map(|s| &s.movie_id).collect();
            for m in &data.movies {
                assert!(playing.contains(&m.id), "{} on day {offset}", m.title);
            }
            let original: HashMap<_, _> = (data.movies.iter())
                .map(|m| (&m.id, &m.original_language))
                .collect();
            let dubbed = data
                .shows
                .iter()
                .filter(|s| &s.language != original[&s.movie_id]);
            assert!(dubbed.count() > 0, "some shows are dubbed");
        }
    }
}
