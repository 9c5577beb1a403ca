"""Built-in reference lists the simulator draws from: places, people, jobs and categories."""

from typing import NamedTuple

# The fraud scenarios, in the order of their FDH codes (TX_FRAUD_SCENARIO 1, 2, 3).
SCENARIOS: tuple[str, ...] = ("card_testing", "compromised_merchant", "stolen_credentials")


class City(NamedTuple):
    """A real US place cardholders live in and merchants trade from."""

    name: str
    state: str
    lat: float
    long: float
    population: int
    zip: int


class CategoryProfile(NamedTuple):
    """How a Sparkov category is used: share of purchases, typical amount and its spread."""

    share: float
    mean_amount: float
    sigma: float
    online: bool


# Big cities and small towns alike, as in the Sparkov data (half its rows come from places
# of fewer than 3,000 people). Coordinates and populations are approximate.
CITIES: tuple[City, ...] = (
    City("New York", "NY", 40.7128, -74.0060, 8_336_817, 10001),
    City("Los Angeles", "CA", 34.0522, -118.2437, 3_898_747, 90012),
    City("Chicago", "IL", 41.8781, -87.6298, 2_746_388, 60601),
    City("Houston", "TX", 29.7604, -95.3698, 2_304_580, 77002),
    City("Phoenix", "AZ", 33.4484, -112.0740, 1_608_139, 85003),
    City("Philadelphia", "PA", 39.9526, -75.1652, 1_603_797, 19103),
    City("San Antonio", "TX", 29.4241, -98.4936, 1_434_625, 78205),
    City("San Diego", "CA", 32.7157, -117.1611, 1_386_932, 92101),
    City("Dallas", "TX", 32.7767, -96.7970, 1_304_379, 75201),
    City("Jacksonville", "FL", 30.3322, -81.6557, 949_611, 32202),
    City("Columbus", "OH", 39.9612, -82.9988, 905_748, 43215),
    City("Charlotte", "NC", 35.2271, -80.8431, 874_579, 28202),
    City("Seattle", "WA", 47.6062, -122.3321, 737_015, 98101),
    City("Denver", "CO", 39.7392, -104.9903, 715_522, 80202),
    City("Nashville", "TN", 36.1627, -86.7816, 689_447, 37203),
    City("Boston", "MA", 42.3601, -71.0589, 675_647, 2108),
    City("Detroit", "MI", 42.3314, -83.0458, 639_111, 48226),
    City("Portland", "OR", 45.5152, -122.6784, 652_503, 97204),
    City("Memphis", "TN", 35.1495, -90.0490, 633_104, 38103),
    City("Atlanta", "GA", 33.7490, -84.3880, 498_715, 30303),
    City("Miami", "FL", 25.7617, -80.1918, 442_241, 33130),
    City("Minneapolis", "MN", 44.9778, -93.2650, 429_954, 55401),
    City("Kansas City", "MO", 39.0997, -94.5786, 508_090, 64105),
    City("Omaha", "NE", 41.2565, -95.9345, 486_051, 68102),
    City("Albuquerque", "NM", 35.0844, -106.6504, 564_559, 87102),
    City("Salt Lake City", "UT", 40.7608, -111.8910, 199_723, 84101),
    City("Boise", "ID", 43.6150, -116.2023, 235_684, 83702),
    City("Billings", "MT", 45.7833, -108.5007, 117_116, 59101),
    City("Fargo", "ND", 46.8772, -96.7898, 125_990, 58102),
    City("Sioux Falls", "SD", 43.5446, -96.7311, 192_517, 57104),
    City("Little Rock", "AR", 34.7465, -92.2896, 202_591, 72201),
    City("Birmingham", "AL", 33.5186, -86.8104, 200_733, 35203),
    City("Richmond", "VA", 37.5407, -77.4360, 226_610, 23219),
    City("Pittsburgh", "PA", 40.4406, -79.9959, 302_971, 15222),
    City("Buffalo", "NY", 42.8864, -78.8784, 278_349, 14202),
    City("Des Moines", "IA", 41.5868, -93.6250, 214_133, 50309),
    City("Spokane", "WA", 47.6588, -117.4260, 228_989, 99201),
    City("Anchorage", "AK", 61.2181, -149.9003, 291_247, 99501),
    City("Honolulu", "HI", 21.3069, -157.8583, 350_964, 96813),
    City("Burlington", "VT", 44.4759, -73.2121, 44_743, 5401),
    City("Bangor", "ME", 44.8016, -68.7712, 31_753, 4401),
    City("Cheyenne", "WY", 41.1400, -104.8202, 65_132, 82001),
    City("Missoula", "MT", 46.8721, -113.9940, 73_489, 59802),
    City("Bozeman", "MT", 45.6770, -111.0429, 53_293, 59715),
    City("Elko", "NV", 40.8324, -115.7631, 20_564, 89801),
    City("Moab", "UT", 38.5733, -109.5498, 5_366, 84532),
    City("Taos", "NM", 36.4072, -105.5731, 6_474, 87571),
    City("Marfa", "TX", 30.3094, -104.0206, 1_788, 79843),
    City("Abilene", "KS", 38.9172, -97.2139, 6_460, 67410),
    City("Dubuque", "IA", 42.5006, -90.6646, 59_667, 52001),
    City("Red Wing", "MN", 44.5625, -92.5338, 16_547, 55066),
    City("Hannibal", "MO", 39.7084, -91.3585, 17_108, 63401),
    City("Paducah", "KY", 37.0834, -88.6001, 27_137, 42001),
    City("Natchez", "MS", 31.5604, -91.4032, 14_520, 39120),
    City("Beaufort", "SC", 32.4316, -80.6698, 13_607, 29902),
    City("Key West", "FL", 24.5551, -81.7800, 26_444, 33040),
    City("Athens", "OH", 39.3292, -82.1013, 23_849, 45701),
    City("Ithaca", "NY", 42.4440, -76.5019, 32_108, 14850),
    City("Gettysburg", "PA", 39.8309, -77.2311, 7_106, 17325),
    City("Bar Harbor", "ME", 44.3876, -68.2039, 5_089, 4609),
    City("Astoria", "OR", 46.1879, -123.8313, 10_181, 97103),
    City("Eureka", "CA", 40.8021, -124.1637, 26_512, 95501),
)

# Sparkov's categories with their share of legitimate purchases and amount profile; the
# means follow the public data (gas ~ $63, grocery_pos ~ $114, shopping_net ~ $71).
CATEGORY_PROFILES: dict[str, CategoryProfile] = {
    "entertainment": CategoryProfile(0.070, 65.0, 0.80, online=False),
    "food_dining": CategoryProfile(0.072, 50.0, 0.70, online=False),
    "gas_transport": CategoryProfile(0.105, 62.0, 0.25, online=False),
    "grocery_net": CategoryProfile(0.033, 53.0, 0.35, online=True),
    "grocery_pos": CategoryProfile(0.096, 115.0, 0.40, online=False),
    "health_fitness": CategoryProfile(0.064, 50.0, 0.70, online=False),
    "home": CategoryProfile(0.096, 60.0, 0.80, online=False),
    "kids_pets": CategoryProfile(0.084, 55.0, 0.75, online=False),
    "misc_net": CategoryProfile(0.049, 60.0, 1.00, online=True),
    "misc_pos": CategoryProfile(0.059, 65.0, 1.00, online=False),
    "personal_care": CategoryProfile(0.070, 50.0, 0.80, online=False),
    "shopping_net": CategoryProfile(0.077, 80.0, 1.00, online=True),
    "shopping_pos": CategoryProfile(0.092, 70.0, 1.00, online=False),
    "travel": CategoryProfile(0.033, 110.0, 1.10, online=False),
}

FIRST_NAMES_F: tuple[str, ...] = (
    "Mary", "Jennifer", "Linda", "Patricia", "Elizabeth", "Susan", "Jessica", "Sarah",
    "Karen", "Nancy", "Lisa", "Margaret", "Betty", "Sandra", "Ashley", "Kimberly", "Emily",
    "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca",
    "Laura", "Sharon", "Cynthia", "Kathleen", "Amy", "Angela", "Shannon", "Brittany",
    "Heather", "Destiny", "Tiffany", "Julie", "Megan", "Rachel", "Samantha",
)  # fmt: skip

FIRST_NAMES_M: tuple[str, ...] = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven",
    "Paul", "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Edward", "Ronald",
    "Timothy", "Jason", "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan",
    "Stephen", "Larry", "Justin", "Scott", "Phillip",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
    "Roberts", "Mcmahon", "Robertson", "Ross", "Lowe", "Kirlin", "Heathcote", "Kilback",
    "Kutch", "Ferry", "Fisher", "Schowalter", "Schuppe", "Roob", "Conn", "Tremblay",
    "Pacocha", "Jewess", "Weimann", "Mcdermott", "Bauch", "Raynor", "Lind", "Buckridge",
    "Kuhn", "Gulgowski", "Rempel", "Bahringer", "Kozey", "Boyer", "Reichel", "Hackett",
    "Larkin", "Stracke", "Huels", "Kassulke", "Dooley", "Okuneva", "Bernier", "Cummerata",
)  # fmt: skip

STREET_NAMES: tuple[str, ...] = (
    "Jonathan", "Smith", "Clements", "Stevens", "Adam", "Maple", "Oak", "Cedar", "Pine",
    "Elm", "Washington", "Lake", "Hill", "Park", "Walnut", "Sunset", "Ridge", "River",
    "Meadow", "Forest", "Church", "Spring", "Highland", "Valley", "Mill", "Chestnut",
    "Willow", "Cherry", "Franklin", "Jefferson", "Lincoln", "Madison", "Jackson", "Grant",
    "Harbor", "Summit", "Prairie", "Aspen", "Juniper", "Cottonwood",
)  # fmt: skip

STREET_SUFFIXES: tuple[str, ...] = (
    "Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way", "Place", "Trail",
    "Terrace", "Falls", "Gateway", "Point", "Trace", "Stravenue", "Crossing",
)  # fmt: skip

JOBS: tuple[str, ...] = (
    "Geologist, wellsite", "Social researcher", "Futures trader", "Chief Executive Officer",
    "Petroleum engineer", "Teacher, primary school", "Nurse, adult", "Civil engineer, contracting",
    "Accountant, chartered", "Software engineer", "Pharmacist, community", "Electrician",
    "Police officer", "Firefighter", "Lawyer", "Architect", "Dentist", "Chef", "Farmer",
    "Journalist, newspaper", "Librarian, public", "Surveyor, land", "Mechanical engineer",
    "Physiotherapist", "Veterinary surgeon", "Retail manager", "Sales executive",
    "Designer, graphic", "Psychologist, clinical", "Paramedic", "Plumber", "Truck driver",
    "Research scientist (medical)", "Administrator, education", "Bookseller",
    "Museum curator", "Radio producer", "Optician, dispensing", "Economist", "Musician",
)  # fmt: skip

MERCHANT_PATTERNS: tuple[str, ...] = (
    "{a} LLC", "{a} Ltd", "{a} Inc", "{a} Group", "{a} PLC", "{a}-{b}", "{a} and Sons",
    "{a}, {b} and {c}",
)  # fmt: skip
