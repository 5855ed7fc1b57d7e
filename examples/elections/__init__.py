"""Recipe: election smart-contract transactions, CSV → database (README "Recipes")."""
