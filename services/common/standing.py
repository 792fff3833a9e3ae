"""Where the shop's services ask for the standing of a token's account (runtime/standing.py is
generic; this names the shop's accounts service and its method)."""

ACCOUNTS_SERVICE = "shop.accounts.v1.AccountsService"
STANDING_METHOD = f"/{ACCOUNTS_SERVICE}/GetAccountStanding"
