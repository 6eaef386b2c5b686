// Team ids and invitation tokens carry their organization (so routes find the owning task
// without a lookup) and parse back exactly; tokens carry at least 128 random bits.
#include <gtest/gtest.h>

#include <set>

#include "processors/teams/team_id.h"
#include "processors/teams/teams_routes.h"

namespace cm::teams {
namespace {

TEST(TeamsIds, ATeamIdNamesItsOrganizationAndIsStablePerCommand) {
  const std::string id = TeamIdFor("acme~eu", "cmd-1");
  EXPECT_EQ(id.rfind("acme~eu~t", 0), 0u);
  EXPECT_EQ(OrganizationOfTeamId(id), "acme~eu");  // the last '~' separates
  EXPECT_EQ(TeamIdFor("acme~eu", "cmd-1"), id);
  EXPECT_NE(TeamIdFor("acme~eu", "cmd-2"), id);
  for (const char* bad : {"", "acme", "~t0123456789abcdef", "acme~t0123", "acme~x0123456789abcdef",
                          "acme~t0123456789ABCDEF"})
    EXPECT_FALSE(OrganizationOfTeamId(bad)) << bad;
}

TEST(TeamsIds, InvitationTokensAreRandomAndNameTheirOrganization) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string token = RandomInvitationToken("org/ä");
    EXPECT_EQ(OrganizationOfInvitationToken(token), "org/ä");
    const std::string random = token.substr(token.find('.') + 1);
    EXPECT_GE(random.size() * 6, 128u);  // base64url: 6 bits a character
    EXPECT_TRUE(seen.insert(token).second);
  }
  for (const char* bad : {"", "cmi_", "cmi_6f7.abc", "cmi_zz.abc", "cmi_6f72.", "tok_6f72.abc"})
    EXPECT_FALSE(OrganizationOfInvitationToken(bad)) << bad;
}

TEST(TeamsIds, IdsRefuseSlashesSpacesAndOverlongValues) {
  EXPECT_TRUE(CheckId("alice@example.com", 128, "userId").ok());
  EXPECT_FALSE(CheckId("", 128, "userId").ok());
  EXPECT_FALSE(CheckId("a/b", 128, "userId").ok());
  EXPECT_FALSE(CheckId("a b", 128, "userId").ok());
  EXPECT_FALSE(CheckId(std::string(129, 'x'), 128, "userId").ok());
  EXPECT_NE(CheckId("a b", 128, "userId").message().find("userId"), std::string::npos);
}

}  // namespace
}  // namespace cm::teams
