package demo

// category is a kind of card spending: its ISO 18245 merchant category code,
// what a typical purchase costs and when shops of that kind are open.
type category struct {
	key    string
	mcc    string
	median float64 // typical amount in major units; amounts are log-normal around it
	sigma  float64 // spread of log(amount)
	// open and close bound the hour (UTC) purchases happen in.
	open, close int
	// refundable purchases are occasionally returned (goods, travel).
	refundable bool
	// credit and debit weigh how often the category shows up on a credit
	// card and on a checking account's debit card.
	credit, debit float64
	merchants     []string
	// atm amounts are round notes, not log-normal.
	atm bool
}

// categories is the merchant catalogue for discretionary card spending.
// Names are invented; codes are the real ISO 18245 ones.
var categories = []category{
	{key: "groceries", mcc: "5411", median: 42, sigma: 0.6, open: 8, close: 21, credit: 18, debit: 20,
		merchants: []string{"FreshMart", "Green Basket Market", "Harvest Foods", "Corner Grocer", "Daily Greens Supermarket"}},
	{key: "restaurants", mcc: "5812", median: 38, sigma: 0.5, open: 12, close: 23, credit: 10, debit: 3,
		merchants: []string{"Trattoria Luca", "The Blue Door Bistro", "Saigon Kitchen", "El Camino Tapas", "Harbour Fish House"}},
	{key: "fast_food", mcc: "5814", median: 9.5, sigma: 0.45, open: 7, close: 22, credit: 16, debit: 12,
		merchants: []string{"Burger Barn", "Quick Wok", "Daily Grind Coffee", "Bagel Stop", "Pizza Corner"}},
	{key: "bakery", mcc: "5462", median: 6, sigma: 0.5, open: 7, close: 18, credit: 2, debit: 3,
		merchants: []string{"Golden Crust Bakery"}},
	{key: "transit", mcc: "4111", median: 2.9, sigma: 0.35, open: 6, close: 23, credit: 6, debit: 8,
		merchants: []string{"Metro Transit", "Regional Rail", "City Bus Company"}},
	{key: "taxi", mcc: "4121", median: 18, sigma: 0.5, open: 0, close: 24, credit: 2, debit: 1,
		merchants: []string{"RideNow", "City Cabs"}},
	{key: "fuel", mcc: "5541", median: 55, sigma: 0.3, open: 6, close: 22, credit: 5, debit: 4,
		merchants: []string{"Northway Fuel", "Roadside Energy", "Valley Gas Station"}},
	{key: "pharmacy", mcc: "5912", median: 16, sigma: 0.6, open: 8, close: 20, credit: 4, debit: 4,
		merchants: []string{"Wellcare Pharmacy", "Corner Chemist"}},
	{key: "electronics", mcc: "5732", median: 120, sigma: 0.9, open: 10, close: 20, refundable: true, credit: 2, debit: 0.5,
		merchants: []string{"Voltage Electronics", "PixelPoint"}},
	{key: "clothing", mcc: "5651", median: 55, sigma: 0.6, open: 10, close: 20, refundable: true, credit: 3, debit: 1,
		merchants: []string{"Thread & Needle", "Urban Outfit Co"}},
	{key: "department_store", mcc: "5311", median: 65, sigma: 0.7, open: 10, close: 21, refundable: true, credit: 1.5, debit: 0.5,
		merchants: []string{"Grand Central Department Store"}},
	{key: "books", mcc: "5942", median: 19, sigma: 0.5, open: 9, close: 20, refundable: true, credit: 1.5, debit: 0.5,
		merchants: []string{"Chapter & Verse Books", "Paper Lantern Bookshop"}},
	{key: "misc_retail", mcc: "5999", median: 24, sigma: 0.8, open: 9, close: 21, refundable: true, credit: 4, debit: 1,
		merchants: []string{"Craft Corner", "Gadget Bazaar", "Everything Online Marketplace"}},
	{key: "cinema", mcc: "7832", median: 24, sigma: 0.3, open: 15, close: 23, credit: 1, debit: 0.5,
		merchants: []string{"Starlight Cinema"}},
	{key: "hotels", mcc: "7011", median: 140, sigma: 0.5, open: 14, close: 23, refundable: true, credit: 0.6,
		merchants: []string{"Grand Harbour Hotel", "Parkside Inn"}},
	{key: "airlines", mcc: "4511", median: 210, sigma: 0.6, open: 8, close: 22, refundable: true, credit: 0.4,
		merchants: []string{"SkyBridge Airlines", "Northwind Air"}},
	{key: "atm", mcc: "6011", open: 7, close: 23, debit: 3, atm: true,
		merchants: []string{"ATM Main Street", "ATM Central Station"}},
}

// atmNotes are the withdrawals cash machines hand out, in major units.
var atmNotes = []int64{20, 40, 50, 60, 100, 200}

// bill is a recurring monthly card payment on a fixed day.
type bill struct {
	merchant string
	mcc      string
	amount   int64 // minor units
	day      int   // day of month (clamped to the month's length)
}

// bills are the subscriptions and contracts customers pick from.
var bills = []bill{
	{merchant: "StreamFlix", mcc: "4899", amount: 1299, day: 5},
	{merchant: "Tunely Music", mcc: "4899", amount: 999, day: 12},
	{merchant: "CableOne TV", mcc: "4899", amount: 3900, day: 8},
	{merchant: "Telnova Mobile", mcc: "4814", amount: 3500, day: 20},
	{merchant: "Fibrelink Broadband", mcc: "4814", amount: 4490, day: 3},
	{merchant: "IronWorks Gym", mcc: "7997", amount: 3900, day: 1},
	{merchant: "Safeguard Insurance", mcc: "6300", amount: 6240, day: 15},
}

// employers pay salaries into checking accounts (no card, no MCC).
var employers = []string{"Northwind Logistics", "Bluebird Health", "Acme Tools", "Riverside School District", "Lumen Software"}

// Names for generated customers and accounts.
var (
	firstNames = []string{"Maria", "James", "Aisha", "Chen", "Olivia", "Mateo", "Sofia", "Liam", "Yuki", "Noah",
		"Fatima", "Lucas", "Emma", "Ravi", "Ingrid", "Kofi", "Elena", "Tomás", "Hana", "Oscar"}
	lastNames = []string{"Keller", "Okafor", "Nguyen", "Garcia", "Novak", "Smith", "Rossi", "Haddad", "Larsen", "Tanaka",
		"Fischer", "Moreau", "Silva", "Kowalski", "Brennan", "Patel", "Lindqvist", "Mensah", "Dubois", "Ortega"}
	checkingNames = []string{"Everyday Checking", "Current Account", "Main Account"}
	savingsNames  = []string{"Rainy Day Savings", "Savings Account", "Holiday Fund"}
	cardNames     = []string{"Rewards Credit Card", "Classic Card", "Travel Card"}
)

// institution is a bank in the synthetic world.
type institution struct{ id, name string }

var institutions = []institution{
	{id: InstitutionID, name: "First Demo Bank"},
	{id: "inst_harbor_credit_union", name: "Harbor Credit Union"},
	{id: "inst_summit_card_services", name: "Summit Card Services"},
}
